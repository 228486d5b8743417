import { IRun } from '../types';
import { formatDuration, formatMetric, KEY_FIELDS, runsToRows } from './runs';

function run(overrides: Partial<IRun>): IRun {
  return {
    run_id: 'a'.repeat(32),
    link: null,
    run_name: 'bold-fox',
    status: 'FINISHED',
    start_time: 1_000,
    end_time: 4_000,
    metrics: {},
    params: {},
    tags: {},
    ...overrides
  };
}

describe('formatDuration', () => {
  it.each([
    [null, ''],
    [undefined, ''],
    [-5, ''],
    [Number.NaN, ''],
    [850, '850 ms'],
    [1_000, '1 s'],
    [59_400, '59 s'],
    [60_000, '1 min'],
    [184_000, '3 min 4 s'],
    [3_600_000, '1 h'],
    [7_500_000, '2 h 5 min']
  ])('%p ms reads %p', (ms, text) => {
    expect(formatDuration(ms as number | null | undefined)).toBe(text);
  });
});

describe('formatMetric', () => {
  it.each([
    [3, '3'],
    [0.966666666, '0.9667'],
    [123456.789, '123500'],
    [Number.POSITIVE_INFINITY, 'Infinity']
  ])('%p is shown as %p', (value, text) => {
    expect(formatMetric(value)).toBe(text);
  });
});

describe('runsToRows', () => {
  it('lists the newest first and keeps the server order on ties', () => {
    const rows = runsToRows([
      run({ run_id: 'old', start_time: 1 }),
      run({ run_id: 'new', start_time: 9 }),
      run({ run_id: 'tie-a', start_time: 5 }),
      run({ run_id: 'tie-b', start_time: 5 })
    ]);
    expect(rows.map(r => r.id)).toEqual(['new', 'tie-a', 'tie-b', 'old']);
  });

  it('flags a run left open and measures it up to now', () => {
    const [row] = runsToRows(
      [run({ status: 'RUNNING', start_time: 0, end_time: null })],
      90_000
    );
    expect(row.active).toBe(true);
    expect(row.statusLabel).toBe('running');
    expect(row.duration).toBe('1 min 30 s');
  });

  it("takes the server's duration when it gives one", () => {
    const [row] = runsToRows([run({ duration_ms: 2_000, end_time: 999_999 })]);
    expect(row.duration).toBe('2 s');
    expect(row.active).toBe(false);
    expect(row.statusLabel).toBe('finished');
  });

  it('shows a few metrics and params, sorted, with short numbers', () => {
    const [row] = runsToRows([
      run({
        metrics: { z: 1, accuracy: 0.912345, b: 2, c: 3 },
        params: { C: '0.5', max_iter: '300' }
      })
    ]);
    expect(row.metrics).toEqual([
      ['accuracy', '0.9123'],
      ['b', '2'],
      ['c', '3']
    ]);
    expect(row.metrics).toHaveLength(KEY_FIELDS);
    expect(row.params).toEqual([
      ['C', '0.5'],
      ['max_iter', '300']
    ]);
  });

  it('names datasets with their context and models by name', () => {
    const [row] = runsToRows([
      run({
        datasets: [
          {
            name: 'iris',
            digest: 'd',
            source_type: 'local',
            context: 'training'
          },
          { name: 'holdout', digest: null, source_type: null, context: null }
        ],
        models: [
          { model_id: 'm-1', name: 'model', link: 'http://mlflow/#/m-1' },
          { model_id: 'm-2', name: null },
          { model_id: 'm-39e1ad1493fe479d9b1749bd137e8aaa' }
        ]
      })
    ]);
    expect(row.datasets).toEqual(['iris (training)', 'holdout']);
    expect(row.models).toEqual([
      { id: 'm-1', label: 'model', link: 'http://mlflow/#/m-1' },
      { id: 'm-2', label: 'm-2', link: null },
      {
        id: 'm-39e1ad1493fe479d9b1749bd137e8aaa',
        label: 'm-39e1ad14…',
        link: null
      }
    ]);
  });

  it('falls back to the run id when the run has no name, and lower-cases unknown states', () => {
    const [row] = runsToRows([
      run({ run_name: null, run_id: '0123456789abcdef', status: 'WEIRD' })
    ]);
    expect(row.name).toBe('01234567');
    expect(row.statusLabel).toBe('weird');
  });
});
