import { IRun } from '../types';
import { diffRuns, MISSING } from './compare';

function run(
  id: string,
  params: Record<string, string>,
  metrics: Record<string, number>
): IRun {
  return {
    run_id: id,
    link: null,
    run_name: `run-${id}`,
    status: 'FINISHED',
    start_time: 0,
    end_time: 1,
    metrics,
    params,
    tags: {}
  };
}

describe('diffRuns', () => {
  it('marks only the values that differ', () => {
    const result = diffRuns([
      run('1', { C: '0.5', max_iter: '300' }, { accuracy: 0.96 }),
      run('2', { C: '2.0', max_iter: '300' }, { accuracy: 0.96 })
    ]);
    expect(result.runs).toEqual([
      { id: '1', name: 'run-1' },
      { id: '2', name: 'run-2' }
    ]);
    expect(result.rows).toEqual([
      { kind: 'param', key: 'C', values: ['0.5', '2.0'], differs: true },
      {
        kind: 'param',
        key: 'max_iter',
        values: ['300', '300'],
        differs: false
      },
      {
        kind: 'metric',
        key: 'accuracy',
        values: ['0.96', '0.96'],
        differs: false
      }
    ]);
  });

  it('shows a key one run lacks as missing, and that is a difference', () => {
    const result = diffRuns([
      run('1', { solver: 'lbfgs' }, {}),
      run('2', {}, { loss: 0.25 }),
      run('3', { solver: 'lbfgs' }, { loss: 0.25 })
    ]);
    const solver = result.rows.find(r => r.key === 'solver');
    const loss = result.rows.find(r => r.key === 'loss');
    expect(solver).toEqual({
      kind: 'param',
      key: 'solver',
      values: ['lbfgs', MISSING, 'lbfgs'],
      differs: true
    });
    expect(loss?.values).toEqual([MISSING, '0.25', '0.25']);
    expect(loss?.differs).toBe(true);
  });

  it('compares metrics as they are shown, so float noise is not a difference', () => {
    const result = diffRuns([
      run('1', {}, { accuracy: 0.9666666666 }),
      run('2', {}, { accuracy: 0.9666666667 })
    ]);
    expect(result.rows[0].differs).toBe(false);
  });

  it('keeps a param and a metric of the same name apart', () => {
    const result = diffRuns([
      run('1', { k: '1' }, { k: 1 }),
      run('2', { k: '2' }, { k: 1 })
    ]);
    expect(result.rows.map(r => [r.kind, r.differs])).toEqual([
      ['param', true],
      ['metric', false]
    ]);
  });
});
