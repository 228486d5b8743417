/**
 * Asking the team's leads for more GPUs: the form's checks (the service's own limits, so a
 * mistake is said before anything is sent) and each request in one line.
 */
import { IQuotaAsk, IQuotaRequest } from '../types';

/** The most extra GPUs one request may ask for (the service's limit). */
export const MAX_GPUS = 64;
/** The longest a request may last, in hours (366 days, the service's limit). */
export const MAX_HOURS = 24 * 366;
/** The longest reason the service keeps. */
export const MAX_REASON = 2000;

/** The form as the inputs give it: text. */
export interface IQuotaForm {
  gpus: string;
  hours: string;
  reason: string;
}

/** The form's defaults: one GPU for eight hours. */
export const QUOTA_FORM_DEFAULTS: IQuotaForm = {
  gpus: '1',
  hours: '8',
  reason: ''
};

export type QuotaFormCheck =
  | { ok: true; ask: IQuotaAsk }
  | { ok: false; field: keyof IQuotaForm; error: string };

/**
 * The request to send, or the first field that is wrong and why: GPUs a whole number from 1
 * to 64, hours a number above 0, a reason of at most 2000 characters.
 */
export function checkQuotaForm(form: IQuotaForm): QuotaFormCheck {
  const gpusText = form.gpus.trim();
  const gpus = Number(gpusText);
  if (
    !/^\d+$/.test(gpusText) ||
    !Number.isInteger(gpus) ||
    gpus < 1 ||
    gpus > MAX_GPUS
  ) {
    return {
      ok: false,
      field: 'gpus',
      error: `Ask for a whole number of GPUs, from 1 to ${MAX_GPUS}.`
    };
  }
  const hoursText = form.hours.trim();
  const hours = Number(hoursText);
  if (
    !/^(\d+(\.\d*)?|\.\d+)$/.test(hoursText) ||
    !Number.isFinite(hours) ||
    hours <= 0 ||
    hours > MAX_HOURS
  ) {
    return {
      ok: false,
      field: 'hours',
      error: `Say for how many hours: a number above 0 (0.5 is half an hour), at most ${MAX_HOURS}.`
    };
  }
  const reason = form.reason.trim();
  if (!reason) {
    return {
      ok: false,
      field: 'reason',
      error: 'Say why you need them: your team lead reads the reason.'
    };
  }
  if (reason.length > MAX_REASON) {
    return {
      ok: false,
      field: 'reason',
      error: `Keep the reason to ${MAX_REASON} characters at most (it has ${reason.length}).`
    };
  }
  return { ok: true, ask: { gpus, hours, reason } };
}

/** A duration in words, as the hub's pages say it: `45 min`, `8 h`, `2 h 30 min`, `3 d`. */
export function durationWords(minutes: number): string {
  const total = Math.max(Math.round(minutes), 0);
  const days = Math.floor(total / (24 * 60));
  const hours = Math.floor((total % (24 * 60)) / 60);
  const mins = total % 60;
  const parts = [
    days ? `${days} d` : '',
    hours ? `${hours} h` : '',
    mins ? `${mins} min` : ''
  ].filter(Boolean);
  return parts.length ? parts.join(' ') : '0 min';
}

/** When an approved request's GPUs end: its decision plus its minutes; null when unknown. */
export function grantedUntil(request: IQuotaRequest): Date | null {
  if (request.state !== 'approved' || !request.decided_at) {
    return null;
  }
  const decided = Date.parse(request.decided_at);
  if (Number.isNaN(decided)) {
    return null;
  }
  return new Date(decided + request.minutes * 60 * 1000);
}

/** A time the way the panel shows it: the user's locale, day and minute. */
export function shortTime(when: Date): string {
  return when.toLocaleString(undefined, {
    dateStyle: 'medium',
    timeStyle: 'short'
  });
}

export interface IQuotaRequestLine {
  id: string;
  state: string;
  /** "2 GPUs for 8 h — waiting for your team lead". */
  text: string;
  /** The reason the user gave, to show beside the line. */
  reason: string;
  /** Only a pending request can be withdrawn. */
  canWithdraw: boolean;
}

/**
 * One request in one line: what was asked, then its outcome (waiting, approved by whom and
 * until when, rejected by whom and why, withdrawn).
 */
export function quotaRequestLine(
  request: IQuotaRequest,
  now: Date = new Date(),
  formatTime: (when: Date) => string = shortTime
): IQuotaRequestLine {
  const gpus = `${request.gpus} ${request.gpus === 1 ? 'GPU' : 'GPUs'}`;
  const asked = `${gpus} for ${durationWords(request.minutes)}`;
  const lead = request.decided_by || 'a team lead';
  let outcome: string;
  switch (request.state) {
    case 'pending':
      outcome = 'waiting for your team lead';
      break;
    case 'approved': {
      const until = grantedUntil(request);
      if (!until) {
        outcome = `approved by ${lead}`;
      } else if (until.getTime() <= now.getTime()) {
        outcome = `approved by ${lead}, ended ${formatTime(until)}`;
      } else {
        outcome = `approved by ${lead} until ${formatTime(until)}`;
      }
      break;
    }
    case 'rejected': {
      const comment = (request.comment ?? '').trim();
      outcome = comment
        ? `rejected by ${lead}: ${comment}`
        : `rejected by ${lead}`;
      break;
    }
    case 'withdrawn':
      outcome = 'withdrawn';
      break;
    default:
      outcome = request.state;
  }
  return {
    id: request.id,
    state: request.state,
    text: `${asked} — ${outcome}`,
    reason: request.reason,
    canWithdraw: request.state === 'pending'
  };
}

/** The requests the service keeps for this team, or null when it keeps none (no form then). */
export function quotaRequestsOf(
  requests: IQuotaRequest[] | null | undefined
): IQuotaRequest[] | null {
  return Array.isArray(requests) ? requests : null;
}
