/**
 * Errors in words a data scientist understands: never a traceback, a JSON dump or an HTML page.
 */

export interface IRequestFailure {
  /** The HTTP status, 0 when the notebook server did not answer. */
  status: number;
  /** The server extension's message, when it sent one. */
  message: string | null;
}

const BY_STATUS: Record<number, string> = {
  0: 'Your notebook server did not answer. Check that it is still running, then retry.',
  401: 'Your session has ended. Reload the page to sign in again.',
  403: 'You may not see this.',
  404: 'Not found.',
  409: 'This server is not set up for it.',
  500: 'Something went wrong in the notebook server.',
  502: 'A service the panel needs did not answer; try again in a minute.',
  503: 'A service the panel needs did not answer; try again in a minute.',
  504: 'A service the panel needs did not answer in time; try again in a minute.'
};

/** Whether a server's message is fit to show as it is. */
export function isPlainMessage(message: string | null): message is string {
  if (!message) {
    return false;
  }
  const text = message.trim();
  return (
    text.length > 0 &&
    text.length <= 600 &&
    !/Traceback|^\s*[{[<]|\bat [\w.$]+ \(/.test(text)
  );
}

/** The message the panel shows for a failed request. */
export function errorMessage(failure: IRequestFailure): string {
  if (isPlainMessage(failure.message)) {
    const text = failure.message.trim();
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  return (
    BY_STATUS[failure.status] ??
    (failure.status >= 500 ? BY_STATUS[500] : 'The request was not accepted.')
  );
}
