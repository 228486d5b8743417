/**
 * Parts every section of the panel uses: its heading with a refresh button, the error box with
 * a retry, and a hook that loads one endpoint.
 */
import * as React from 'react';

import { failureOf } from '../api';
import { errorMessage } from '../model/errors';

export function ErrorBox(props: {
  message: string;
  /** Without it, no Retry button (an error the user fixes in a form). */
  onRetry?: () => void;
  testid?: string;
  id?: string;
}): JSX.Element {
  return (
    <div
      className="jp-mlteams-error"
      role="alert"
      data-testid={props.testid ?? 'mlteams-error'}
      id={props.id}
    >
      <span>{props.message}</span>
      {props.onRetry && (
        <button
          className="jp-mlteams-button"
          data-testid="mlteams-retry"
          onClick={props.onRetry}
        >
          Retry
        </button>
      )}
    </div>
  );
}

export function SectionHeading(props: {
  title: string;
  testid: string;
  onRefresh?: () => void;
  busy?: boolean;
  children?: React.ReactNode;
}): JSX.Element {
  return (
    <div className="jp-mlteams-heading">
      <h3>{props.title}</h3>
      {props.children}
      {props.onRefresh && (
        <button
          className="jp-mlteams-button jp-mlteams-refresh"
          data-testid={props.testid}
          onClick={props.onRefresh}
          disabled={props.busy}
          aria-label={`Refresh ${props.title.toLowerCase()}`}
          title={`Refresh ${props.title.toLowerCase()}`}
        >
          {props.busy ? 'Loading…' : 'Refresh'}
        </button>
      )}
    </div>
  );
}

export interface IRequestState<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/**
 * Load ``load()`` now and whenever ``deps`` change or ``reload`` is called. An answer that
 * comes after a newer request started is dropped, so a slow answer never overwrites a new one.
 */
export function useRequest<T>(
  load: () => Promise<T>,
  deps: React.DependencyList
): IRequestState<T> {
  const [data, setData] = React.useState<T | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [loading, setLoading] = React.useState(true);
  const [tick, setTick] = React.useState(0);
  const latest = React.useRef(0);
  React.useEffect(() => {
    const ticket = ++latest.current;
    setLoading(true);
    load().then(
      value => {
        if (ticket === latest.current) {
          setData(value);
          setError(null);
          setLoading(false);
        }
      },
      reason => {
        if (ticket === latest.current) {
          setError(errorMessage(failureOf(reason)));
          setLoading(false);
        }
      }
    );
  }, [...deps, tick]);
  const reload = React.useCallback(() => setTick(t => t + 1), []);
  return { data, error, loading, reload };
}
