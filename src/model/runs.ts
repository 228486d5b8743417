/**
 * Runs of the notebook as the panel lists them: pure functions, no DOM, no requests.
 */
import { IRun } from '../types';

/** How many metrics and params a row shows; the rest are in the comparison. */
export const KEY_FIELDS = 3;

export interface IRunRow {
  id: string;
  name: string;
  status: string;
  statusLabel: string;
  active: boolean;
  duration: string;
  started: string;
  metrics: [string, string][];
  params: [string, string][];
  datasets: string[];
  models: { id: string; label: string; link: string | null }[];
  link: string | null;
}

const STATUS_LABELS: Record<string, string> = {
  RUNNING: 'running',
  SCHEDULED: 'scheduled',
  FINISHED: 'finished',
  FAILED: 'failed',
  KILLED: 'killed'
};

/** A duration in words a person reads at a glance: `850 ms`, `12 s`, `3 min 4 s`, `2 h 5 min`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) {
    return '';
  }
  if (ms < 1000) {
    return `${Math.round(ms)} ms`;
  }
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) {
    return `${seconds} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    const rest = seconds % 60;
    return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

/** A metric value short enough for a row: four significant digits, integers as they are. */
export function formatMetric(value: number): string {
  if (!Number.isFinite(value)) {
    return String(value);
  }
  if (Number.isInteger(value)) {
    return String(value);
  }
  return String(Number(value.toPrecision(4)));
}

function duration(run: IRun, now: number): number | null {
  if (run.duration_ms !== undefined && run.duration_ms !== null) {
    return run.duration_ms;
  }
  if (run.start_time === null) {
    return null;
  }
  const end = run.end_time ?? (run.status === 'RUNNING' ? now : null);
  return end === null ? null : end - run.start_time;
}

/** A logged model's id short enough for a row (MLflow's are `m-` and 32 hex digits). */
export function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 10)}…` : id;
}

function sortedEntries<T>(
  record: Record<string, T> | undefined
): [string, T][] {
  return Object.entries(record ?? {}).sort(([a], [b]) => a.localeCompare(b));
}

/** The rows of the runs list, newest first (the order the server gives is kept on ties). */
export function runsToRows(runs: IRun[], now: number = Date.now()): IRunRow[] {
  const ordered = runs
    .map((run, index) => ({ run, index }))
    .sort(
      (a, b) =>
        (b.run.start_time ?? 0) - (a.run.start_time ?? 0) || a.index - b.index
    )
    .map(({ run }) => run);
  return ordered.map(run => ({
    id: run.run_id,
    name: run.run_name || run.run_id.slice(0, 8),
    status: run.status,
    statusLabel: STATUS_LABELS[run.status] ?? run.status.toLowerCase(),
    active: run.status === 'RUNNING',
    duration: formatDuration(duration(run, now)),
    started:
      run.start_time === null ? '' : new Date(run.start_time).toLocaleString(),
    metrics: sortedEntries(run.metrics)
      .slice(0, KEY_FIELDS)
      .map(([k, v]) => [k, formatMetric(v)]),
    params: sortedEntries(run.params).slice(0, KEY_FIELDS),
    datasets: (run.datasets ?? []).map(d =>
      d.context ? `${d.name} (${d.context})` : d.name
    ),
    models: (run.models ?? []).map(m => ({
      id: m.model_id,
      label: m.name || shortId(m.model_id),
      link: m.link ?? null
    })),
    link: run.link
  }));
}
