/**
 * The JupyterLab side panel of jupyterhub-mlteams: the open notebook's MLflow runs, the team's
 * datasets and GPUs, and model promotion, in the right sidebar.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ReactWidget } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { NotebookFollower } from './follower';

export const PANEL_ID = 'mlteams-panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161">
<path d="M4 19h4v-7H4v7zm6 0h4V5h-4v14zm6 0h4v-10h-4v10zM2 21h20v1H2z"/>
</g></svg>`;

export const mlteamsIcon = new LabIcon({
  name: 'jupyterhub-mlteams:panel',
  svgstr: ICON_SVG
});

type PanelComponent = (props: { follower: NotebookFollower }) => JSX.Element;

class PanelWidget extends ReactWidget {
  constructor(
    private readonly _follower: NotebookFollower,
    private readonly _component: PanelComponent
  ) {
    super();
    this.addClass('jp-mlteams-sidebar');
  }

  protected render(): JSX.Element {
    return React.createElement(this._component, { follower: this._follower });
  }

  dispose(): void {
    this._follower.dispose();
    super.dispose();
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterhub-mlteams:panel',
  description:
    "The notebook's MLflow runs, the team's datasets and GPUs, and model promotion.",
  autoStart: true,
  optional: [INotebookTracker, ILayoutRestorer],
  activate: async (
    app: JupyterFrontEnd,
    tracker: INotebookTracker | null,
    restorer: ILayoutRestorer | null
  ) => {
    // subscribed before anything is awaited, so the first notebook is never missed
    const follower = new NotebookFollower(tracker);
    const { MLTeamsPanel } = await import('./panel/Panel');
    const widget = new PanelWidget(follower, MLTeamsPanel);
    widget.id = PANEL_ID;
    widget.title.icon = mlteamsIcon;
    widget.title.caption = 'ML teams: runs, datasets, GPUs, promotion';
    widget.title.dataset = { testid: 'mlteams-panel-tab' };
    app.shell.add(widget, 'right', { rank: 600 });
    restorer?.add(widget, PANEL_ID);
  }
};

export default plugin;
