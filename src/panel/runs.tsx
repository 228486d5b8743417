/**
 * "Runs of this notebook": newest first, a page at a time, refreshed when a cell of the
 * notebook has run; pick two or more to compare them.
 */
import * as React from 'react';

import { api, failureOf } from '../api';
import { NotebookFollower } from '../follower';
import { errorMessage } from '../model/errors';
import { IRunRow, runsToRows } from '../model/runs';
import { IRun, IRunsPage } from '../types';
import { CompareView } from './compare';
import { ErrorBox, SectionHeading } from './common';

export const PAGE_SIZE = 10;

export interface INotebookRuns {
  path: string | null;
  runs: IRun[];
  experimentLink: string | null;
  nextToken: string | null;
  loading: boolean;
  error: string | null;
  refresh: () => void;
  more: () => void;
}

/** The followed notebook's runs: the first page again on every change, more on request. */
export function useNotebookRuns(follower: NotebookFollower): INotebookRuns {
  const [path, setPath] = React.useState<string | null>(follower.path);
  const [page, setPage] = React.useState<IRunsPage | null>(null);
  const [runs, setRuns] = React.useState<IRun[]>([]);
  const [loading, setLoading] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const latest = React.useRef(0);

  const load = React.useCallback(
    (forPath: string | null, token: string | null, previous: IRun[]) => {
      const ticket = ++latest.current;
      if (forPath === null) {
        setRuns([]);
        setPage(null);
        setError(null);
        return;
      }
      setLoading(true);
      api.runs(forPath, PAGE_SIZE, token).then(
        answer => {
          if (ticket !== latest.current) {
            return;
          }
          const seen = new Set(answer.runs.map(r => r.run_id));
          setRuns([
            ...previous.filter(r => !seen.has(r.run_id)),
            ...answer.runs
          ]);
          setPage(answer);
          setError(null);
          setLoading(false);
        },
        reason => {
          if (ticket === latest.current) {
            setError(errorMessage(failureOf(reason)));
            setLoading(false);
          }
        }
      );
    },
    []
  );

  React.useEffect(() => {
    const onPath = (_: NotebookFollower, next: string | null) => {
      setPath(next);
      load(next, null, []);
    };
    const onRan = () => load(follower.path, null, []);
    follower.pathChanged.connect(onPath);
    follower.cellRan.connect(onRan);
    setPath(follower.path);
    load(follower.path, null, []);
    return () => {
      follower.pathChanged.disconnect(onPath);
      follower.cellRan.disconnect(onRan);
    };
  }, [follower, load]);

  return {
    path,
    runs,
    experimentLink: page?.experiment_link ?? null,
    nextToken: page?.next_page_token ?? null,
    loading,
    error,
    refresh: () => load(path, null, []),
    more: () => load(path, page?.next_page_token ?? null, runs)
  };
}

function RunRow(props: {
  row: IRunRow;
  selected: boolean;
  onSelect: (selected: boolean) => void;
  onEnd: () => void;
  ending: boolean;
}): JSX.Element {
  const { row } = props;
  return (
    <li
      className="jp-mlteams-run"
      data-testid="mlteams-run-row"
      data-run-id={row.id}
      data-status={row.status}
    >
      <div className="jp-mlteams-run-head">
        <input
          type="checkbox"
          data-testid="mlteams-run-select"
          checked={props.selected}
          onChange={event => props.onSelect(event.currentTarget.checked)}
          aria-label={`Select run ${row.name} to compare`}
        />
        <span className="jp-mlteams-run-name" title={row.id}>
          {row.name}
        </span>
        <span
          className={`jp-mlteams-badge jp-mlteams-status-${row.status.toLowerCase()}`}
          data-testid="mlteams-run-status"
        >
          {row.statusLabel}
        </span>
        {row.duration && (
          <span className="jp-mlteams-muted" title={`started ${row.started}`}>
            {row.duration}
          </span>
        )}
      </div>
      {(row.metrics.length > 0 || row.params.length > 0) && (
        <dl className="jp-mlteams-fields">
          {row.metrics.map(([key, value]) => (
            <React.Fragment key={`m-${key}`}>
              <dt>{key}</dt>
              <dd>{value}</dd>
            </React.Fragment>
          ))}
          {row.params.map(([key, value]) => (
            <React.Fragment key={`p-${key}`}>
              <dt>{key}</dt>
              <dd>{value}</dd>
            </React.Fragment>
          ))}
        </dl>
      )}
      {row.datasets.length > 0 && (
        <div className="jp-mlteams-muted" data-testid="mlteams-run-datasets">
          Data: {row.datasets.join(', ')}
        </div>
      )}
      {row.models.length > 0 && (
        <div className="jp-mlteams-muted" data-testid="mlteams-run-models">
          Models:{' '}
          {row.models.map((m, i) => (
            <React.Fragment key={m.id}>
              {i > 0 && ', '}
              {m.link ? (
                <a href={m.link} target="_blank" rel="noopener noreferrer">
                  {m.label}
                </a>
              ) : (
                m.label
              )}
            </React.Fragment>
          ))}
        </div>
      )}
      <div className="jp-mlteams-run-actions">
        {row.link && (
          <a
            href={row.link}
            target="_blank"
            rel="noopener noreferrer"
            data-testid="mlteams-run-link"
          >
            Open in MLflow
          </a>
        )}
        {row.active && (
          <button
            className="jp-mlteams-button"
            data-testid="mlteams-end-run"
            onClick={props.onEnd}
            disabled={props.ending}
            title="This run is still open: later cells log into it until it ends"
          >
            {props.ending ? 'Ending…' : 'End run'}
          </button>
        )}
      </div>
    </li>
  );
}

export function RunsSection(props: { runs: INotebookRuns }): JSX.Element {
  const { runs } = props;
  const [selected, setSelected] = React.useState<string[]>([]);
  const [comparing, setComparing] = React.useState(false);
  const [ending, setEnding] = React.useState<string | null>(null);
  const [endError, setEndError] = React.useState<string | null>(null);
  const rows = runsToRows(runs.runs);

  React.useEffect(() => {
    setSelected([]);
    setComparing(false);
  }, [runs.path]);

  const select = (id: string, on: boolean) =>
    setSelected(now =>
      on ? [...now.filter(x => x !== id), id] : now.filter(x => x !== id)
    );
  const end = (id: string) => {
    setEnding(id);
    setEndError(null);
    api.endRun(id).then(
      () => {
        setEnding(null);
        runs.refresh();
      },
      reason => {
        setEnding(null);
        setEndError(errorMessage(failureOf(reason)));
      }
    );
  };
  const chosen = runs.runs.filter(r => selected.includes(r.run_id));

  return (
    <section className="jp-mlteams-section" data-testid="mlteams-runs">
      <SectionHeading
        title="Runs of this notebook"
        testid="mlteams-runs-refresh"
        onRefresh={runs.path ? runs.refresh : undefined}
        busy={runs.loading}
      />
      {runs.path === null && (
        <p className="jp-mlteams-muted">
          Open a notebook to see the runs it logged to MLflow.
        </p>
      )}
      {runs.path !== null && (
        <p className="jp-mlteams-muted jp-mlteams-path" title={runs.path}>
          {runs.path}
          {runs.experimentLink && (
            <>
              {' · '}
              <a
                href={runs.experimentLink}
                target="_blank"
                rel="noopener noreferrer"
                data-testid="mlteams-experiment-link"
              >
                experiment in MLflow
              </a>
            </>
          )}
        </p>
      )}
      {runs.error && <ErrorBox message={runs.error} onRetry={runs.refresh} />}
      {endError && <p className="jp-mlteams-warning">{endError}</p>}
      {runs.path !== null &&
        !runs.error &&
        rows.length === 0 &&
        !runs.loading && (
          <p className="jp-mlteams-muted">
            No runs of this notebook yet. Runs appear here when a cell trains a
            model or logs to MLflow.
          </p>
        )}
      {rows.length > 0 && (
        <ul className="jp-mlteams-list">
          {rows.map(row => (
            <RunRow
              key={row.id}
              row={row}
              selected={selected.includes(row.id)}
              onSelect={on => select(row.id, on)}
              onEnd={() => end(row.id)}
              ending={ending === row.id}
            />
          ))}
        </ul>
      )}
      <div className="jp-mlteams-run-actions">
        {rows.length > 1 && (
          <button
            className="jp-mlteams-button"
            data-testid="mlteams-compare-button"
            disabled={chosen.length < 2}
            onClick={() => setComparing(true)}
            title="Pick two or more runs to compare"
          >
            Compare {chosen.length > 1 ? `${chosen.length} runs` : 'runs'}
          </button>
        )}
        {runs.nextToken && (
          <button
            className="jp-mlteams-button"
            data-testid="mlteams-runs-more"
            onClick={runs.more}
            disabled={runs.loading}
          >
            Older runs
          </button>
        )}
      </div>
      {comparing && chosen.length > 1 && (
        <CompareView runs={chosen} onClose={() => setComparing(false)} />
      )}
    </section>
  );
}
