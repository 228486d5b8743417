/**
 * Two or more runs side by side: every param and metric any of them has, and whether they
 * differ.
 */
import { IRun } from '../types';
import { formatMetric } from './runs';

export interface ICompareRow {
  kind: 'param' | 'metric';
  key: string;
  values: string[];
  differs: boolean;
}

export interface IComparison {
  runs: { id: string; name: string }[];
  rows: ICompareRow[];
}

/** A value a run does not have. */
export const MISSING = '—';

function rowsOf(
  kind: 'param' | 'metric',
  records: Record<string, string>[]
): ICompareRow[] {
  const keys = new Set<string>();
  records.forEach(record => Object.keys(record).forEach(key => keys.add(key)));
  return [...keys]
    .sort((a, b) => a.localeCompare(b))
    .map(key => {
      const values = records.map(record =>
        key in record ? record[key] : MISSING
      );
      return {
        kind,
        key,
        values,
        differs: new Set(values).size > 1
      };
    });
}

/** The comparison of ``runs`` in the order given: params first, then metrics. */
export function diffRuns(runs: IRun[]): IComparison {
  const params = runs.map(run => ({ ...run.params }));
  const metrics = runs.map(run =>
    Object.fromEntries(
      Object.entries(run.metrics).map(([k, v]) => [k, formatMetric(v)])
    )
  );
  return {
    runs: runs.map(run => ({
      id: run.run_id,
      name: run.run_name || run.run_id.slice(0, 8)
    })),
    rows: [...rowsOf('param', params), ...rowsOf('metric', metrics)]
  };
}
