import { errorMessage, isPlainMessage } from './errors';

describe('errorMessage', () => {
  it("shows the server extension's own message", () => {
    expect(
      errorMessage({
        status: 503,
        message: 'the MLflow tracking server did not answer; try again later'
      })
    ).toBe('The MLflow tracking server did not answer; try again later');
  });

  it.each([
    'Traceback (most recent call last):\n  File "x.py"',
    '{"error_code": "INTERNAL_ERROR"}',
    '<html><body>502 Bad Gateway</body></html>',
    'TypeError: x is undefined\n    at Object.run (main.js:1:2)',
    'x'.repeat(601),
    '   ',
    null
  ])('never shows %p as it is', message => {
    const text = errorMessage({ status: 503, message });
    expect(text).toBe(
      'A service the panel needs did not answer; try again in a minute.'
    );
  });

  it.each([
    [
      0,
      'Your notebook server did not answer. Check that it is still running, then retry.'
    ],
    [401, 'Your session has ended. Reload the page to sign in again.'],
    [507, 'Something went wrong in the notebook server.'],
    [418, 'The request was not accepted.']
  ])('status %p without a message reads %p', (status, text) => {
    expect(errorMessage({ status, message: null })).toBe(text);
  });

  it('recognises plain messages', () => {
    expect(isPlainMessage('your MLflow account may not read run 1')).toBe(true);
    expect(
      errorMessage({ status: 403, message: ' you may not end this run ' })
    ).toBe('You may not end this run');
    expect(isPlainMessage('')).toBe(false);
  });
});
