/**
 * Promote a run's logged model to the team's governed registry: choose the run and model, see
 * the gates, submit, and follow the outcome item by item until it settles.
 */
import * as React from 'react';

import { api, failureOf, RequestError } from '../api';
import { errorMessage } from '../model/errors';
import { gateSpecLines, outcomeView, versionLink } from '../model/promotion';
import { ILoggedModel, IPromotion, IRun, ITeamLive } from '../types';
import { ErrorBox } from './common';

/** How often a promotion still evaluating or waiting is asked for again, in ms. */
export const FOLLOW_EVERY_MS = 2000;

function useRunModels(runId: string) {
  const [models, setModels] = React.useState<ILoggedModel[] | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [tick, setTick] = React.useState(0);
  React.useEffect(() => {
    let current = true;
    setModels(null);
    setError(null);
    if (!runId) {
      return;
    }
    api.runModels(runId).then(
      answer => current && setModels(answer.models),
      reason => current && setError(errorMessage(failureOf(reason)))
    );
    return () => {
      current = false;
    };
  }, [runId, tick]);
  return { models, error, retry: () => setTick(t => t + 1) };
}

/** Follow a promotion until it settles. */
function usePromotion(initial: IPromotion | null) {
  const [promotion, setPromotion] = React.useState<IPromotion | null>(initial);
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => setPromotion(initial), [initial]);
  React.useEffect(() => {
    if (!promotion || outcomeView(promotion, null).settled) {
      return;
    }
    const timer = window.setTimeout(() => {
      api.promotion(promotion.id).then(
        next => {
          setError(null);
          setPromotion(next);
        },
        reason => {
          setError(errorMessage(failureOf(reason)));
          setPromotion({ ...promotion });
        }
      );
    }, FOLLOW_EVERY_MS);
    return () => window.clearTimeout(timer);
  }, [promotion]);
  return { promotion, error };
}

function Outcome(props: {
  promotion: IPromotion;
  approvers: string | null;
  modelLink: string | null;
  followError: string | null;
}): JSX.Element {
  const view = outcomeView(props.promotion, props.approvers);
  const [card, setCard] = React.useState<string | null>(null);
  const [cardError, setCardError] = React.useState<string | null>(null);
  const showCard = () => {
    setCardError(null);
    api.card(props.promotion.id).then(
      text => setCard(typeof text === 'string' ? text : JSON.stringify(text)),
      reason => setCardError(errorMessage(failureOf(reason)))
    );
  };
  return (
    <div
      className={`jp-mlteams-outcome jp-mlteams-outcome-${view.state}`}
      data-testid="mlteams-promote-outcome"
      data-state={view.state}
      aria-live="polite"
    >
      <p className="jp-mlteams-outcome-headline">{view.headline}</p>
      {view.detail && <p>{view.detail}</p>}
      {props.followError && (
        <p className="jp-mlteams-warning">{props.followError}</p>
      )}
      {view.gates.length > 0 && (
        <ul className="jp-mlteams-gates">
          {view.gates.map(gate => (
            <li
              key={gate.gate}
              data-testid="mlteams-gate"
              data-passed={gate.passed ? 'true' : 'false'}
              className={
                gate.passed ? 'jp-mlteams-passed' : 'jp-mlteams-failed'
              }
            >
              <span aria-hidden="true">{gate.passed ? '✓ ' : '✗ '}</span>
              {gate.text}
            </li>
          ))}
        </ul>
      )}
      {view.state === 'promoted' && props.modelLink && (
        <a
          href={props.modelLink}
          target="_blank"
          rel="noopener noreferrer"
          data-testid="mlteams-model-version-link"
        >
          Open the version in MLflow
        </a>
      )}
      {view.hasCard && card === null && (
        <button className="jp-mlteams-button" onClick={showCard}>
          Show the model card
        </button>
      )}
      {cardError && <p className="jp-mlteams-warning">{cardError}</p>}
      {card !== null && (
        <pre className="jp-mlteams-card" data-testid="mlteams-model-card">
          {card}
        </pre>
      )}
    </div>
  );
}

export function PromoteSection(props: {
  runs: IRun[];
  live: ITeamLive | null;
  /** The MLflow UI's page of a model version, with `{name}` and `{version}` to fill in. */
  versionLinkTemplate: string | null | undefined;
}): JSX.Element {
  const promotion = props.live?.promotion;
  const [runId, setRunId] = React.useState('');
  const [model, setModel] = React.useState('');
  const [name, setName] = React.useState('');
  const [human, setHuman] = React.useState<Record<string, string>>({});
  const [submitting, setSubmitting] = React.useState(false);
  const [submitError, setSubmitError] = React.useState<string | null>(null);
  const [started, setStarted] = React.useState<IPromotion | null>(null);
  const models = useRunModels(runId);
  const followed = usePromotion(started);

  React.useEffect(() => {
    const first = models.models?.[0]?.name;
    setModel(first ?? '');
  }, [models.models]);

  if (!props.live) {
    return (
      <section className="jp-mlteams-section" data-testid="mlteams-promote">
        <h3>Promote a model</h3>
      </section>
    );
  }
  if (!promotion?.available) {
    return (
      <section className="jp-mlteams-section" data-testid="mlteams-promote">
        <h3>Promote a model</h3>
        <p
          className="jp-mlteams-muted"
          data-testid="mlteams-promote-unavailable"
        >
          Promotion is unavailable here:{' '}
          {promotion?.reason ?? 'the team service did not say why.'}
        </p>
      </section>
    );
  }
  const gates = gateSpecLines(promotion.gates ?? []);
  const highStakes = Boolean(promotion.high_stakes);
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    setSubmitting(true);
    setSubmitError(null);
    const body: Record<string, string> = {
      model: name.trim(),
      run_id: runId,
      artifact_path: model
    };
    for (const [key, value] of Object.entries(human)) {
      if (value.trim()) {
        body[key] = value.trim();
      }
    }
    api.promote(body).then(
      answer => {
        setSubmitting(false);
        setStarted(answer.data);
      },
      reason => {
        setSubmitting(false);
        const body = reason instanceof RequestError ? reason.body : null;
        if (body && typeof body === 'object' && 'state' in body) {
          setStarted(body as IPromotion);
        } else {
          setSubmitError(errorMessage(failureOf(reason)));
        }
      }
    );
  };
  const field = (key: string, label: string) => (
    <label className="jp-mlteams-field" key={key}>
      {label}
      <textarea
        data-testid={`mlteams-promote-${key.replace(/_/g, '-')}`}
        value={human[key] ?? ''}
        onChange={e => {
          const value = e.currentTarget.value;
          setHuman(now => ({ ...now, [key]: value }));
        }}
        rows={2}
      />
    </label>
  );
  return (
    <section className="jp-mlteams-section" data-testid="mlteams-promote">
      <h3>Promote a model</h3>
      <form onSubmit={submit} className="jp-mlteams-form">
        <label className="jp-mlteams-field">
          Run
          <select
            data-testid="mlteams-promote-run"
            value={runId}
            onChange={e => setRunId(e.currentTarget.value)}
          >
            <option value="">Choose a run of this notebook</option>
            {props.runs.map(run => (
              <option key={run.run_id} value={run.run_id}>
                {run.run_name || run.run_id.slice(0, 8)} (
                {run.status.toLowerCase()})
              </option>
            ))}
          </select>
        </label>
        <label className="jp-mlteams-field">
          Logged model
          <select
            data-testid="mlteams-promote-model"
            value={model}
            onChange={e => setModel(e.currentTarget.value)}
            disabled={!models.models || models.models.length === 0}
          >
            {(models.models ?? []).map(m => (
              <option key={m.model_id} value={m.name ?? ''}>
                {m.name ?? m.model_id}
              </option>
            ))}
          </select>
        </label>
        {runId && models.models?.length === 0 && (
          <p className="jp-mlteams-muted">This run logged no model.</p>
        )}
        {models.error && (
          <ErrorBox message={models.error} onRetry={models.retry} />
        )}
        <label className="jp-mlteams-field">
          Name in the team's registry
          <input
            type="text"
            data-testid="mlteams-promote-name"
            value={name}
            onChange={e => setName(e.currentTarget.value)}
            placeholder="for example iris"
            required
          />
        </label>
        <div data-testid="mlteams-promote-gates" className="jp-mlteams-muted">
          {gates.length > 0 ? (
            <>
              The service checks, on the team's own held-out data:
              <ul>
                {gates.map(line => (
                  <li key={line}>{line}</li>
                ))}
              </ul>
            </>
          ) : (
            'This team sets no metric gates.'
          )}
          {highStakes && (
            <p>
              High-stakes model: after the gates,{' '}
              {promotion.approvers ?? 'a lead of your team'} approves.
            </p>
          )}
        </div>
        {highStakes && (
          <>
            {field('intended_use', 'Intended use')}
            {field('out_of_scope_use', 'Out-of-scope use')}
            {field('limitations', 'Limitations')}
          </>
        )}
        {submitError && (
          <p className="jp-mlteams-warning" role="alert">
            {submitError}
          </p>
        )}
        <button
          type="submit"
          className="jp-mlteams-button jp-mod-accept"
          data-testid="mlteams-promote-submit"
          disabled={submitting || !runId || !model || !name.trim()}
        >
          {submitting ? 'Submitting…' : 'Promote'}
        </button>
      </form>
      {followed.promotion && (
        <Outcome
          promotion={followed.promotion}
          approvers={promotion.approvers ?? null}
          modelLink={versionLink(props.versionLinkTemplate, followed.promotion)}
          followError={followed.error}
        />
      )}
    </section>
  );
}
