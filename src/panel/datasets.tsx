/**
 * The team's datasets: what each is, whether it is mounted in this server, and a snippet that
 * reads it, inserted into the notebook.
 */
import * as React from 'react';

import { api, failureOf } from '../api';
import { NotebookFollower } from '../follower';
import { mountLabel } from '../model/datasets';
import { errorMessage } from '../model/errors';
import { insertCode } from '../notebook';
import { IDataset } from '../types';
import { ErrorBox, SectionHeading, useRequest } from './common';

function DatasetItem(props: {
  dataset: IDataset;
  follower: NotebookFollower;
  hasNotebook: boolean;
}): JSX.Element {
  const { dataset } = props;
  const [busy, setBusy] = React.useState(false);
  const [problem, setProblem] = React.useState<string | null>(null);
  const mount = mountLabel(dataset);
  const insert = () => {
    const notebook = props.follower.notebook;
    if (!notebook) {
      setProblem('Open a notebook to insert the snippet into.');
      return;
    }
    setBusy(true);
    setProblem(null);
    api.dataset(dataset.name).then(
      answer => {
        setBusy(false);
        insertCode(notebook.content, answer.snippet);
      },
      reason => {
        setBusy(false);
        setProblem(errorMessage(failureOf(reason)));
      }
    );
  };
  return (
    <li
      className="jp-mlteams-dataset"
      data-testid="mlteams-dataset"
      data-name={dataset.name}
    >
      <div className="jp-mlteams-run-head">
        <span className="jp-mlteams-run-name">{dataset.name}</span>
        {dataset.format && (
          <span className="jp-mlteams-badge">{dataset.format}</span>
        )}
      </div>
      {dataset.description && <div>{dataset.description}</div>}
      <div
        className={`jp-mlteams-muted jp-mlteams-mount-${mount.level}`}
        data-testid="mlteams-dataset-mount"
      >
        {mount.text}
      </div>
      {problem && <p className="jp-mlteams-warning">{problem}</p>}
      <button
        className="jp-mlteams-button"
        data-testid="mlteams-insert-snippet"
        onClick={insert}
        disabled={busy || !props.hasNotebook}
        title={
          props.hasNotebook
            ? 'Insert code that reads this dataset below the active cell'
            : 'Open a notebook first'
        }
      >
        Insert snippet
      </button>
    </li>
  );
}

export function DatasetsSection(props: {
  follower: NotebookFollower;
  hasNotebook: boolean;
}): JSX.Element {
  const request = useRequest(() => api.datasets(), []);
  const datasets = request.data?.datasets ?? [];
  return (
    <section className="jp-mlteams-section" data-testid="mlteams-datasets">
      <SectionHeading
        title="Team datasets"
        testid="mlteams-datasets-refresh"
        onRefresh={request.reload}
        busy={request.loading}
      />
      {request.error && (
        <ErrorBox message={request.error} onRetry={request.reload} />
      )}
      {request.data && datasets.length === 0 && (
        <p className="jp-mlteams-muted">
          Your team has no datasets in its catalog.
        </p>
      )}
      <ul className="jp-mlteams-list">
        {datasets.map(dataset => (
          <DatasetItem
            key={dataset.name}
            dataset={dataset}
            follower={props.follower}
            hasNotebook={props.hasNotebook}
          />
        ))}
      </ul>
    </section>
  );
}
