/**
 * The comparison of the selected runs: params and metrics side by side, differences marked.
 */
import * as React from 'react';

import { diffRuns, ICompareRow } from '../model/compare';
import { IRun } from '../types';

function Rows(props: { title: string; rows: ICompareRow[]; span: number }) {
  if (props.rows.length === 0) {
    return null;
  }
  return (
    <>
      <tr className="jp-mlteams-compare-group">
        <th colSpan={props.span} scope="colgroup">
          {props.title}
        </th>
      </tr>
      {props.rows.map(row => (
        <tr
          key={`${row.kind}-${row.key}`}
          data-key={row.key}
          data-kind={row.kind}
          data-diff={row.differs ? 'true' : 'false'}
          className={row.differs ? 'jp-mlteams-differs' : undefined}
        >
          <th scope="row">{row.key}</th>
          {row.values.map((value, i) => (
            <td key={i}>{value}</td>
          ))}
        </tr>
      ))}
    </>
  );
}

export function CompareView(props: {
  runs: IRun[];
  onClose: () => void;
}): JSX.Element {
  const comparison = diffRuns(props.runs);
  const span = comparison.runs.length + 1;
  const differing = comparison.rows.filter(r => r.differs).length;
  return (
    <div className="jp-mlteams-compare" data-testid="mlteams-compare">
      <div className="jp-mlteams-heading">
        <h4>
          {comparison.runs.length} runs: {differing} of {comparison.rows.length}{' '}
          values differ
        </h4>
        <button
          className="jp-mlteams-button"
          data-testid="mlteams-compare-close"
          onClick={props.onClose}
        >
          Close
        </button>
      </div>
      <table>
        <thead>
          <tr>
            <th scope="col">
              <span className="jp-mlteams-sr-only">Name</span>
            </th>
            {comparison.runs.map(run => (
              <th key={run.id} scope="col" title={run.id}>
                {run.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          <Rows
            title="Params"
            rows={comparison.rows.filter(r => r.kind === 'param')}
            span={span}
          />
          <Rows
            title="Metrics"
            rows={comparison.rows.filter(r => r.kind === 'metric')}
            span={span}
          />
        </tbody>
      </table>
    </div>
  );
}
