/**
 * The side panel: the team it speaks for, then runs, datasets, GPUs and promotion.
 */
import * as React from 'react';

import { api } from '../api';
import { NotebookFollower } from '../follower';
import { teamLabel } from '../model/gpus';
import { ErrorBox, useRequest } from './common';
import { DatasetsSection } from './datasets';
import { GpusSection } from './gpus';
import { PromoteSection } from './promote';
import { RunsSection, useNotebookRuns } from './runs';

/** How often the team's live figures are asked for again while the panel is open, in ms. */
export const LIVE_EVERY_MS = 30000;

export function MLTeamsPanel(props: {
  follower: NotebookFollower;
}): JSX.Element {
  const team = useRequest(() => api.team(), []);
  const live = useRequest(() => api.teamLive(), []);
  const runs = useNotebookRuns(props.follower);
  const { reload } = live;
  React.useEffect(() => {
    const timer = window.setInterval(reload, LIVE_EVERY_MS);
    return () => window.clearInterval(timer);
  }, [reload]);

  const name = team.data?.team
    ? teamLabel(team.data.team_display_name, team.data.team)
    : null;
  return (
    <div className="jp-mlteams-panel" data-testid="mlteams-panel">
      <header className="jp-mlteams-header">
        <h2>ML teams</h2>
        {name && (
          <span className="jp-mlteams-muted" data-testid="mlteams-team">
            {name}
            {team.data?.user ? ` · ${team.data.user}` : ''}
          </span>
        )}
      </header>
      {team.error && <ErrorBox message={team.error} onRetry={team.reload} />}
      <RunsSection runs={runs} />
      <DatasetsSection
        follower={props.follower}
        hasNotebook={runs.path !== null}
      />
      <GpusSection live={live} />
      <PromoteSection
        runs={runs.runs}
        live={live.data}
        versionLinkTemplate={team.data?.model_version_link_template}
      />
    </div>
  );
}
