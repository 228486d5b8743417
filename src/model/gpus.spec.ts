import { ITeamLive } from '../types';
import { gpuSummary, teamLabel } from './gpus';

function live(
  gpus: Partial<ITeamLive['gpus']>,
  extra: Partial<ITeamLive> = {}
): ITeamLive {
  return {
    team: 'vision',
    display_name: 'Vision',
    source: 'live',
    note: null,
    gpus: {
      limit: 8,
      in_use: 5,
      free: 3,
      per_user_limit: 2,
      you_hold: 1,
      queue: [],
      ...gpus
    },
    promotion: { available: false, reason: 'not set up' },
    ...extra
  };
}

describe('gpuSummary', () => {
  it('says the live figures in one sentence', () => {
    const view = gpuSummary(live({}));
    expect(view.summary).toBe(
      'Team Vision: 3 of 8 GPUs free; you hold 1 of your 2'
    );
    expect(view.level).toBe('ok');
    expect(view.note).toBeNull();
  });

  it('marks a team with no GPU free', () => {
    const view = gpuSummary(live({ in_use: 8, free: 0, you_hold: 2 }));
    expect(view.summary).toBe(
      'Team Vision: 0 of 8 GPUs free; you hold 2 of your 2'
    );
    expect(view.level).toBe('full');
  });

  it('says plainly when the figure is from spawn time', () => {
    const note =
      'Live figures are unavailable; these are the limits when your server started.';
    const view = gpuSummary(
      live({ in_use: null, free: null, you_hold: 0 }, { source: 'spawn', note })
    );
    expect(view.summary).toBe(
      'Team Vision: 8 GPUs in the quota; you hold 0 of your 2'
    );
    expect(view.note).toBe(note);
    expect(view.level).toBe('unknown');
  });

  it('handles a team with no GPU quota and no per-user limit', () => {
    const view = gpuSummary(
      live({ limit: null, per_user_limit: null, you_hold: null })
    );
    expect(view.summary).toBe('Team Vision: no GPU quota; you hold 0');
  });

  it('lists the queue in order with the GPUs each waits for', () => {
    const view = gpuSummary(
      live({
        free: 0,
        queue: [
          { user: 'v-ann', gpus: 1, position: 1 },
          { user: 'v-bo', gpus: 2, position: 2 }
        ]
      })
    );
    expect(view.queue).toEqual([
      '1. v-ann waits for 1 GPU',
      '2. v-bo waits for 2 GPUs'
    ]);
  });

  it('uses the team name when there is no display name', () => {
    expect(teamLabel(null, 'nlp')).toBe('Team nlp');
    expect(teamLabel('NLP', 'nlp')).toBe('Team NLP');
  });
});
