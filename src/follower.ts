/**
 * Which notebook the panel follows. Subscribed to the notebook tracker when the extension
 * activates, outside React, so the first notebook opened is never missed; renames are followed
 * and a cell that finished running in the followed notebook is announced.
 */
import {
  INotebookTracker,
  Notebook,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

export class NotebookFollower implements IDisposable {
  constructor(tracker: INotebookTracker | null) {
    this._tracker = tracker;
    if (tracker) {
      tracker.currentChanged.connect(this._onCurrentChanged, this);
      this._follow(tracker.currentWidget);
    }
    NotebookActions.executed.connect(this._onExecuted, this);
  }

  /** The followed notebook's path relative to the server root, or ``null``. */
  get path(): string | null {
    return this._panel?.context.path ?? null;
  }

  /** The followed notebook, for inserting cells into. */
  get notebook(): NotebookPanel | null {
    return this._panel;
  }

  /** Emitted when the followed notebook changes or is renamed. */
  get pathChanged(): ISignal<this, string | null> {
    return this._pathChanged;
  }

  /** Emitted when a cell of the followed notebook has finished running. */
  get cellRan(): ISignal<this, void> {
    return this._cellRan;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._tracker?.currentChanged.disconnect(this._onCurrentChanged, this);
    NotebookActions.executed.disconnect(this._onExecuted, this);
    this._panel?.context.pathChanged.disconnect(this._onRenamed, this);
    Signal.clearData(this);
  }

  private _onCurrentChanged(
    _tracker: INotebookTracker,
    panel: NotebookPanel | null
  ): void {
    // focus moving to a non-notebook leaves the tracker's current notebook in place
    if (panel !== null) {
      this._follow(panel);
    }
  }

  private _follow(panel: NotebookPanel | null): void {
    if (panel === this._panel) {
      return;
    }
    this._panel?.context.pathChanged.disconnect(this._onRenamed, this);
    this._panel?.disposed.disconnect(this._onClosed, this);
    this._panel = panel;
    panel?.context.pathChanged.connect(this._onRenamed, this);
    panel?.disposed.connect(this._onClosed, this);
    this._pathChanged.emit(this.path);
  }

  private _onClosed(panel: NotebookPanel): void {
    const next = this._tracker?.currentWidget ?? null;
    this._follow(next === panel ? null : next);
  }

  private _onRenamed(): void {
    this._pathChanged.emit(this.path);
  }

  private _onExecuted(
    _sender: unknown,
    args: { notebook: Notebook; success: boolean }
  ): void {
    if (this._panel && args.notebook === this._panel.content) {
      this._cellRan.emit();
    }
  }

  private _tracker: INotebookTracker | null;
  private _panel: NotebookPanel | null = null;
  private _disposed = false;
  private _pathChanged = new Signal<this, string | null>(this);
  private _cellRan = new Signal<this, void>(this);
}
