/**
 * Putting code into the notebook: the active cell when it is an empty code cell, else a new
 * code cell below it.
 */
import { Notebook, NotebookActions } from '@jupyterlab/notebook';

export function insertCode(notebook: Notebook, code: string): void {
  const active = notebook.activeCell;
  const reuse =
    active !== null &&
    active !== undefined &&
    active.model.type === 'code' &&
    active.model.sharedModel.getSource().trim() === '';
  if (!reuse) {
    NotebookActions.insertBelow(notebook);
    if (notebook.activeCell?.model.type !== 'code') {
      NotebookActions.changeCellType(notebook, 'code');
    }
  }
  notebook.activeCell?.model.sharedModel.setSource(code);
}
