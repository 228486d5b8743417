/**
 * The team's GPUs in one sentence, and the queue, from `/mlteams/team/live`.
 */
import { ITeamLive } from '../types';

export interface IGpuView {
  summary: string;
  note: string | null;
  queue: string[];
  /** `ok`, `full` (no GPU free) or `unknown` (no live figure). */
  level: 'ok' | 'full' | 'unknown';
}

export function teamLabel(displayName: string | null, team: string): string {
  return `Team ${displayName || team}`;
}

function gpuWord(n: number): string {
  return n === 1 ? 'GPU' : 'GPUs';
}

/**
 * "Team Vision: 3 of 8 GPUs free; you hold 1 of your 2" when the figures are live; the limit
 * alone, said to be from spawn time, when they are not.
 */
export function gpuSummary(live: ITeamLive): IGpuView {
  const team = teamLabel(live.display_name, live.team);
  const g = live.gpus;
  const yours =
    g.per_user_limit === null
      ? `you hold ${g.you_hold ?? 0}`
      : `you hold ${g.you_hold ?? 0} of your ${g.per_user_limit}`;
  const queue = (g.queue ?? []).map(
    q => `${q.position}. ${q.user} waits for ${q.gpus} ${gpuWord(q.gpus)}`
  );
  if (g.limit === null) {
    return {
      summary: `${team}: no GPU quota; ${yours}`,
      note: live.note,
      queue,
      level: 'unknown'
    };
  }
  if (g.free === null || g.in_use === null) {
    return {
      summary: `${team}: ${g.limit} ${gpuWord(g.limit)} in the quota; ${yours}`,
      note: live.note,
      queue,
      level: 'unknown'
    };
  }
  return {
    summary: `${team}: ${g.free} of ${g.limit} ${gpuWord(g.limit)} free; ${yours}`,
    note: live.note,
    queue,
    level: g.free > 0 ? 'ok' : 'full'
  };
}
