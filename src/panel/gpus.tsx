/**
 * The team's GPUs, live from the hub's team service: free, yours, and who waits.
 */
import * as React from 'react';

import { gpuSummary } from '../model/gpus';
import { ITeamLive } from '../types';
import { ErrorBox, IRequestState, SectionHeading } from './common';

export function GpusSection(props: {
  live: IRequestState<ITeamLive>;
}): JSX.Element {
  const { live } = props;
  const view = live.data ? gpuSummary(live.data) : null;
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
        </>
      )}
    </section>
  );
}
