import { IQuotaRequest } from '../types';
import {
  checkQuotaForm,
  durationWords,
  grantedUntil,
  IQuotaForm,
  QUOTA_FORM_DEFAULTS,
  quotaRequestLine,
  quotaRequestsOf
} from './quota';

function form(extra: Partial<IQuotaForm>): IQuotaForm {
  return { ...QUOTA_FORM_DEFAULTS, reason: 'retrain before Friday', ...extra };
}

function request(extra: Partial<IQuotaRequest>): IQuotaRequest {
  return {
    id: 'r1',
    team: 'vision',
    user: 'alice',
    gpus: 2,
    minutes: 480,
    reason: 'retrain before Friday',
    state: 'pending',
    created_at: '2025-03-03T08:00:00+00:00',
    decided_at: null,
    decided_by: null,
    comment: null,
    override_id: null,
    ...extra
  };
}

const iso = (when: Date) => when.toISOString();
const NOW = new Date('2025-03-03T12:00:00Z');

describe('checkQuotaForm', () => {
  it('asks for one GPU for eight hours by default', () => {
    expect(checkQuotaForm(form({}))).toEqual({
      ok: true,
      ask: { gpus: 1, hours: 8, reason: 'retrain before Friday' }
    });
  });

  it.each([
    [
      { gpus: '64', hours: '0.5' },
      { gpus: 64, hours: 0.5 }
    ],
    [
      { gpus: ' 3 ', hours: '.25' },
      { gpus: 3, hours: 0.25 }
    ],
    [
      { gpus: '1', hours: '8784' },
      { gpus: 1, hours: 8784 }
    ],
    [{ reason: '  needs a trim  ' }, { reason: 'needs a trim' }],
    [{ reason: 'x'.repeat(2000) }, { reason: 'x'.repeat(2000) }]
  ])('accepts %p', (fields, expected) => {
    const check = checkQuotaForm(form(fields));
    expect(check.ok).toBe(true);
    expect(check.ok && check.ask).toMatchObject(expected);
  });

  it.each([
    [{ gpus: '' }, 'gpus', 'Ask for a whole number of GPUs, from 1 to 64.'],
    [{ gpus: '0' }, 'gpus', 'Ask for a whole number of GPUs, from 1 to 64.'],
    [{ gpus: '65' }, 'gpus', 'Ask for a whole number of GPUs, from 1 to 64.'],
    [{ gpus: '1.5' }, 'gpus', 'Ask for a whole number of GPUs, from 1 to 64.'],
    [{ gpus: '-2' }, 'gpus', 'Ask for a whole number of GPUs, from 1 to 64.'],
    [{ gpus: '1e1' }, 'gpus', 'Ask for a whole number of GPUs, from 1 to 64.'],
    [{ hours: '' }, 'hours', 'Say for how many hours'],
    [{ hours: '0' }, 'hours', 'Say for how many hours'],
    [{ hours: '-1' }, 'hours', 'Say for how many hours'],
    [{ hours: '8785' }, 'hours', 'at most 8784'],
    [{ hours: 'eight' }, 'hours', 'Say for how many hours'],
    [{ reason: '' }, 'reason', 'Say why you need them'],
    [{ reason: '   \n ' }, 'reason', 'Say why you need them'],
    [{ reason: 'x'.repeat(2001) }, 'reason', 'at most (it has 2001)']
  ])('refuses %p, naming the field %p', (fields, field, error) => {
    const check = checkQuotaForm(form(fields));
    expect(check.ok).toBe(false);
    expect(!check.ok && check.field).toBe(field);
    expect(!check.ok && check.error).toContain(error);
  });

  it('says the first wrong field when several are', () => {
    const check = checkQuotaForm({ gpus: '0', hours: '0', reason: '' });
    expect(!check.ok && check.field).toBe('gpus');
  });
});

describe('durationWords', () => {
  it.each([
    [30, '30 min'],
    [60, '1 h'],
    [150, '2 h 30 min'],
    [480, '8 h'],
    [24 * 60, '1 d'],
    [3 * 24 * 60 + 90, '3 d 1 h 30 min'],
    [0, '0 min']
  ])('%p minutes read %p', (minutes, words) => {
    expect(durationWords(minutes)).toBe(words);
  });
});

describe('quotaRequestLine', () => {
  it.each([
    [
      'pending',
      request({}),
      '2 GPUs for 8 h — waiting for your team lead',
      true
    ],
    [
      'approved, still running',
      request({
        state: 'approved',
        decided_at: '2025-03-03T09:00:00+00:00',
        decided_by: 'lena',
        override_id: 'o1'
      }),
      '2 GPUs for 8 h — approved by lena until 2025-03-03T17:00:00.000Z',
      false
    ],
    [
      'approved, over',
      request({
        gpus: 1,
        minutes: 30,
        state: 'approved',
        decided_at: '2025-03-03T09:00:00Z',
        decided_by: 'lena'
      }),
      '1 GPU for 30 min — approved by lena, ended 2025-03-03T09:30:00.000Z',
      false
    ],
    [
      'approved with no decision time',
      request({ state: 'approved', decided_by: 'lena' }),
      '2 GPUs for 8 h — approved by lena',
      false
    ],
    [
      'rejected with a comment',
      request({
        state: 'rejected',
        decided_at: '2025-03-03T09:00:00Z',
        decided_by: 'lena',
        comment: ' the cluster is full this week '
      }),
      '2 GPUs for 8 h — rejected by lena: the cluster is full this week',
      false
    ],
    [
      'rejected by nobody named, without a comment',
      request({ state: 'rejected', decided_at: '2025-03-03T09:00:00Z' }),
      '2 GPUs for 8 h — rejected by a team lead',
      false
    ],
    [
      'withdrawn',
      request({ state: 'withdrawn', decided_by: 'alice', minutes: 90 }),
      '2 GPUs for 1 h 30 min — withdrawn',
      false
    ]
  ])('%s', (_, given, text, canWithdraw) => {
    const line = quotaRequestLine(given, NOW, iso);
    expect(line.text).toBe(text);
    expect(line.canWithdraw).toBe(canWithdraw);
    expect(line.id).toBe('r1');
    expect(line.reason).toBe('retrain before Friday');
  });

  it('formats the end with the locale by default', () => {
    const line = quotaRequestLine(
      request({
        state: 'approved',
        decided_at: '2025-03-03T09:00:00Z',
        decided_by: 'lena'
      }),
      NOW
    );
    expect(line.text).toMatch(/^2 GPUs for 8 h — approved by lena until .+$/);
  });
});

describe('grantedUntil', () => {
  it.each([
    [request({}), null],
    [request({ state: 'approved', decided_at: 'not a time' }), null],
    [
      request({ state: 'approved', decided_at: '2025-03-03T09:00:00Z' }),
      '2025-03-03T17:00:00.000Z'
    ]
  ])('case %#: ends at %p', (given, expected) => {
    const until = grantedUntil(given);
    expect(until ? until.toISOString() : null).toBe(expected);
  });
});

describe('quotaRequestsOf', () => {
  it.each([
    [null, null],
    [undefined, null],
    [[], []]
  ])('%p gives %p', (given, expected) => {
    expect(quotaRequestsOf(given)).toEqual(expected);
  });
});
