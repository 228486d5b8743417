/**
 * The team's GPUs, live from the hub's team service: free, yours, and who waits; and asking
 * your team's leads for more, with your requests and their outcomes.
 */
import * as React from 'react';

import { api, failureOf } from '../api';
import { errorMessage } from '../model/errors';
import { gpuSummary } from '../model/gpus';
import {
  checkQuotaForm,
  IQuotaForm,
  QUOTA_FORM_DEFAULTS,
  quotaRequestLine,
  quotaRequestsOf
} from '../model/quota';
import { IQuotaRequest, ITeamLive } from '../types';
import { ErrorBox, IRequestState, SectionHeading } from './common';

/** The most GPUs the form's arrows go to; the service takes up to 64. */
const FORM_MAX_GPUS = 8;

interface IQuotaError {
  message: string;
  /** The field to fix, when the form's check found it. */
  field: keyof IQuotaForm | null;
}

/**
 * "Need more GPUs?": a form that asks the team's leads (no ticket), then the user's requests in
 * this team, newest first, each with its outcome; a pending one can be withdrawn.
 */
function QuotaRequests(props: {
  requests: IQuotaRequest[];
  reload: () => void;
}): JSX.Element {
  const { requests, reload } = props;
  const ids = React.useId();
  const [form, setForm] = React.useState<IQuotaForm>(QUOTA_FORM_DEFAULTS);
  const [sending, setSending] = React.useState(false);
  const [withdrawing, setWithdrawing] = React.useState<string | null>(null);
  const [error, setError] = React.useState<IQuotaError | null>(null);
  const fields = {
    gpus: React.useRef<HTMLInputElement>(null),
    hours: React.useRef<HTMLInputElement>(null),
    reason: React.useRef<HTMLTextAreaElement>(null)
  };
  const errorId = `${ids}-error`;

  const change =
    (key: keyof IQuotaForm) =>
    (event: React.ChangeEvent<HTMLInputElement | HTMLTextAreaElement>) => {
      const value = event.currentTarget.value;
      setForm(now => ({ ...now, [key]: value }));
      if (error?.field === key) {
        setError(null);
      }
    };

  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    if (sending) {
      return;
    }
    const check = checkQuotaForm(form);
    if (!check.ok) {
      setError({ message: check.error, field: check.field });
      fields[check.field].current?.focus();
      return;
    }
    setSending(true);
    setError(null);
    api.askForGpus(check.ask).then(
      () => {
        setSending(false);
        setForm(now => ({ ...now, reason: '' }));
        reload();
      },
      reason => {
        setSending(false);
        setError({ message: errorMessage(failureOf(reason)), field: null });
      }
    );
  };

  const withdraw = (id: string) => {
    setWithdrawing(id);
    setError(null);
    api.withdrawQuotaRequest(id).then(
      () => {
        setWithdrawing(null);
        reload();
      },
      reason => {
        setWithdrawing(null);
        setError({ message: errorMessage(failureOf(reason)), field: null });
      }
    );
  };

  const invalid = (key: keyof IQuotaForm) =>
    error?.field === key
      ? { 'aria-invalid': true, 'aria-describedby': errorId }
      : {};
  const now = new Date();
  return (
    <div className="jp-mlteams-quota" data-testid="mlteams-quota">
      <h4 id={`${ids}-heading`}>Need more GPUs?</h4>
      <form
        className="jp-mlteams-form"
        onSubmit={submit}
        aria-labelledby={`${ids}-heading`}
        noValidate
      >
        <div className="jp-mlteams-quota-figures">
          <div className="jp-mlteams-field">
            <label htmlFor={`${ids}-gpus`}>GPUs</label>
            <input
              id={`${ids}-gpus`}
              ref={fields.gpus}
              type="number"
              inputMode="numeric"
              min={1}
              max={FORM_MAX_GPUS}
              step={1}
              required
              value={form.gpus}
              onChange={change('gpus')}
              data-testid="mlteams-quota-gpus"
              {...invalid('gpus')}
            />
          </div>
          <div className="jp-mlteams-field">
            <label htmlFor={`${ids}-hours`}>For how many hours</label>
            <input
              id={`${ids}-hours`}
              ref={fields.hours}
              type="number"
              inputMode="decimal"
              min={0.5}
              step={0.5}
              required
              value={form.hours}
              onChange={change('hours')}
              data-testid="mlteams-quota-hours"
              {...invalid('hours')}
            />
          </div>
        </div>
        <div className="jp-mlteams-field">
          <label htmlFor={`${ids}-reason`}>Why you need them</label>
          <textarea
            id={`${ids}-reason`}
            ref={fields.reason}
            rows={2}
            required
            value={form.reason}
            onChange={change('reason')}
            placeholder="for example: retrain the detector before Friday's review"
            data-testid="mlteams-quota-reason"
            {...invalid('reason')}
          />
        </div>
        <button
          type="submit"
          className="jp-mlteams-button jp-mod-accept jp-mlteams-quota-submit"
          data-testid="mlteams-quota-submit"
          disabled={sending}
        >
          {sending ? 'Asking…' : 'Ask your lead'}
        </button>
      </form>
      {error && (
        <ErrorBox
          message={error.message}
          testid="mlteams-quota-error"
          id={errorId}
        />
      )}
      <ul
        className="jp-mlteams-quota-requests"
        data-testid="mlteams-quota-requests"
        aria-live="polite"
        aria-label="Your requests for more GPUs in this team"
      >
        {requests.map(request => {
          const line = quotaRequestLine(request, now);
          return (
            <li
              key={line.id}
              className={`jp-mlteams-quota-request jp-mlteams-quota-${line.state}`}
              data-testid={`mlteams-quota-request-${line.id}`}
              data-state={line.state}
            >
              <div className="jp-mlteams-quota-line">
                <span>{line.text}</span>
                {line.canWithdraw && (
                  <button
                    className="jp-mlteams-button"
                    data-testid={`mlteams-quota-withdraw-${line.id}`}
                    onClick={() => withdraw(line.id)}
                    disabled={withdrawing !== null}
                    aria-label={`Withdraw the request: ${line.text}`}
                  >
                    {withdrawing === line.id ? 'Withdrawing…' : 'Withdraw'}
                  </button>
                )}
              </div>
              {line.reason && (
                <div className="jp-mlteams-muted jp-mlteams-quota-why">
                  {line.reason}
                </div>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}

export function GpusSection(props: {
  live: IRequestState<ITeamLive>;
}): JSX.Element {
  const { live } = props;
  const view = live.data ? gpuSummary(live.data) : null;
  const requests = live.data ? quotaRequestsOf(live.data.quota_requests) : null;
  return (
    <section className="jp-mlteams-section" data-testid="mlteams-gpus">
      <SectionHeading
        title="Team GPUs"
        testid="mlteams-gpus-refresh"
        onRefresh={live.reload}
        busy={live.loading}
      />
      {live.error && <ErrorBox message={live.error} onRetry={live.reload} />}
      {view && (
        <>
          <p
            className={`jp-mlteams-gpu jp-mlteams-gpu-${view.level}`}
            data-testid="mlteams-gpu-summary"
            aria-live="polite"
          >
            {view.summary}
          </p>
          {view.note && (
            <p className="jp-mlteams-muted" data-testid="mlteams-gpu-note">
              {view.note}
            </p>
          )}
          {view.queue.length > 0 && (
            <div data-testid="mlteams-gpu-queue">
              <h4>Waiting for a GPU</h4>
              <ol className="jp-mlteams-queue">
                {view.queue.map(line => (
                  <li key={line}>{line.replace(/^\d+\. /, '')}</li>
                ))}
              </ol>
            </div>
          )}
          {requests && (
            <QuotaRequests requests={requests} reload={live.reload} />
          )}
        </>
      )}
    </section>
  );
}
