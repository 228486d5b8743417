/**
 * The shapes of the server extension's `/mlteams/` answers, as the panel reads them.
 */

export interface IDatasetInput {
  name: string;
  digest: string | null;
  source_type: string | null;
  context: string | null;
}

export interface ILoggedModelRef {
  model_id: string;
  /** Not in the runs list (MLflow's run search gives ids only); in `runs/<id>/models`. */
  name?: string | null;
  link?: string | null;
}

export interface IRun {
  run_id: string;
  link: string | null;
  run_name: string | null;
  status: string;
  start_time: number | null;
  end_time: number | null;
  duration_ms?: number | null;
  metrics: Record<string, number>;
  params: Record<string, string>;
  tags: Record<string, string>;
  datasets?: IDatasetInput[];
  models?: ILoggedModelRef[];
}

export interface IRunsPage {
  experiment: string;
  experiment_id?: string | null;
  experiment_link?: string | null;
  runs: IRun[];
  next_page_token: string | null;
}

export interface ILoggedModel {
  model_id: string;
  name: string | null;
  link?: string | null;
  status?: string;
  artifact_location?: string | null;
}

export interface IDataset {
  name: string;
  uri: string;
  format: string | null;
  description: string | null;
  mount_path: string | null;
  mount_status: 'mounted' | 'missing' | 'not-mounted' | string;
  read_only: boolean;
}

export interface ITeam {
  user: string | null;
  team: string | null;
  team_display_name: string | null;
  contact: string | null;
  profile: string | null;
  gpus: number;
  quota: { gpus: number | null; gpus_per_user: number | null };
  tracking: boolean;
  tracking_public_url?: string | null;
  model_version_link_template?: string | null;
  promotion?: { available: boolean; reason: string | null };
}

export interface IQueueEntry {
  user: string;
  gpus: number;
  position: number;
}

export interface IGateSpec {
  gate: string;
  metric: string | null;
  threshold: number | null;
  description?: string | null;
}

export interface ITeamLive {
  team: string;
  display_name: string | null;
  source: 'live' | 'config' | 'spawn' | string;
  note: string | null;
  gpus: {
    limit: number | null;
    in_use: number | null;
    free: number | null;
    per_user_limit: number | null;
    you_hold: number | null;
    queue: IQueueEntry[];
  };
  promotion: {
    available: boolean;
    reason: string | null;
    high_stakes?: boolean;
    approvers?: string | null;
    gates?: IGateSpec[];
  };
  /**
   * Your requests for more GPUs in this team, newest first (at most 5); null when the service
   * keeps none, absent in the spawn-time figures.
   */
  quota_requests?: IQuotaRequest[] | null;
}

/** A request for more GPUs, as the hub's mlteams service keeps it. */
export interface IQuotaRequest {
  id: string;
  team: string;
  user: string;
  gpus: number;
  /** For how long the grant lasts once approved. */
  minutes: number;
  reason: string;
  state: 'pending' | 'approved' | 'rejected' | 'withdrawn' | string;
  created_at: string;
  decided_at: string | null;
  /** The lead who decided, or the user who withdrew it. */
  decided_by: string | null;
  comment: string | null;
  override_id: string | null;
}

/** What the panel sends to ask for more GPUs (the server sets the team). */
export interface IQuotaAsk {
  gpus: number;
  hours: number;
  reason: string;
}

export interface IGateResult {
  gate: string;
  metric: string | null;
  value: number | null;
  threshold: number | null;
  passed: boolean;
  message: string;
}

export interface IPromotion {
  id: string;
  team: string;
  model: string;
  governed_name: string | null;
  state: string;
  run_id: string;
  version: number | string | null;
  previous_version: number | string | null;
  gates: IGateResult[];
  approver: string | null;
  comment: string | null;
  message: string | null;
}
