/**
 * Requests to this server's own `/mlteams/` endpoints, through `ServerConnection.makeRequest`
 * so the server's token and XSRF cookie go with every one of them.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IRequestFailure } from './model/errors';
import {
  IDataset,
  ILoggedModel,
  IPromotion,
  IQuotaAsk,
  IQuotaRequest,
  IRun,
  IRunsPage,
  ITeam,
  ITeamLive
} from './types';

/** A request the server extension refused or did not answer. */
export class RequestError extends Error implements IRequestFailure {
  constructor(
    readonly status: number,
    readonly serverMessage: string | null,
    readonly body: unknown = null
  ) {
    super(serverMessage ?? `request failed with status ${status}`);
    this.name = 'RequestError';
  }
}

/** What a failed request tells the panel: its status and the server's message. */
export function failureOf(error: unknown): IRequestFailure {
  if (error instanceof RequestError) {
    return { status: error.status, message: error.serverMessage };
  }
  return { status: 0, message: null };
}

export interface IReply<T> {
  status: number;
  data: T;
}

/** One request; the answer's status and JSON body. Throws ``RequestError`` when it is not 2xx. */
export async function request<T>(
  endpoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings(),
  accept: (status: number) => boolean = status => status < 300
): Promise<IReply<T>> {
  const url = URLExt.join(settings.baseUrl, 'mlteams', endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch {
    throw new RequestError(0, null);
  }
  const text = await response.text();
  let data: any = text;
  if (text && (response.headers.get('Content-Type') ?? '').includes('json')) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!accept(response.status)) {
    const message =
      data && typeof data === 'object' && typeof data.message === 'string'
        ? data.message
        : null;
    throw new RequestError(response.status, message, data);
  }
  return { status: response.status, data: data as T };
}

async function getJSON<T>(endpoint: string): Promise<T> {
  return (await request<T>(endpoint)).data;
}

function post<T>(
  endpoint: string,
  body: unknown,
  accept?: (status: number) => boolean
): Promise<IReply<T>> {
  return request<T>(
    endpoint,
    { method: 'POST', body: JSON.stringify(body) },
    undefined,
    accept
  );
}

/** The calls the panel makes, one function an endpoint. */
export const api = {
  team: (): Promise<ITeam> => getJSON<ITeam>('team'),
  teamLive: (): Promise<ITeamLive> => getJSON<ITeamLive>('team/live'),
  runs: (path: string, pageSize: number, token?: string | null) =>
    getJSON<IRunsPage>(
      'runs' +
        URLExt.objectToQueryString({
          path,
          page_size: String(pageSize),
          ...(token ? { page_token: token } : {})
        })
    ),
  endRun: (runId: string) =>
    post<IRun>(`runs/${encodeURIComponent(runId)}/end`, {}),
  runModels: (runId: string) =>
    getJSON<{ models: ILoggedModel[] }>(
      `runs/${encodeURIComponent(runId)}/models`
    ),
  datasets: () => getJSON<{ datasets: IDataset[] }>('datasets'),
  dataset: (name: string) =>
    getJSON<IDataset & { snippet: string }>(
      `datasets/${encodeURIComponent(name)}`
    ),
  /**
   * Ask for a promotion without waiting: the answer is the promotion as it stands (evaluating,
   * or already refused with its gate results, which comes back as 422).
   */
  promote: (body: Record<string, string>) =>
    post<IPromotion>(
      'promote?wait=0',
      body,
      status => status < 300 || status === 422
    ),
  promotion: (id: string) =>
    getJSON<IPromotion>(`promotions/${encodeURIComponent(id)}`),
  card: (id: string) =>
    getJSON<string>(`promotions/${encodeURIComponent(id)}/card`),
  /** Your requests for more GPUs, in all your teams, newest first. */
  quotaRequests: () => getJSON<{ requests: IQuotaRequest[] }>('quota-requests'),
  /** Ask this server's team's leads for more GPUs for a while. */
  askForGpus: (body: IQuotaAsk) => post<IQuotaRequest>('quota-requests', body),
  /** Withdraw one of your own pending requests. */
  withdrawQuotaRequest: (id: string) =>
    request<IQuotaRequest>(`quota-requests/${encodeURIComponent(id)}`, {
      method: 'DELETE'
    })
};
