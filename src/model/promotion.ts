/**
 * Promotion as the panel shows it: the gates a model will meet, and the outcome item by item.
 */
import { IGateResult, IGateSpec, IPromotion } from '../types';
import { formatMetric } from './runs';

export interface IGateLine {
  gate: string;
  passed: boolean;
  text: string;
}

export interface IOutcomeView {
  state: string;
  /** Whether the panel should keep asking for the promotion's state. */
  settled: boolean;
  headline: string;
  detail: string | null;
  gates: IGateLine[];
  hasCard: boolean;
}

/** What each gate of the team checks, for the promote form. */
export function gateSpecLines(gates: IGateSpec[]): string[] {
  return gates.map(gate => {
    if (gate.description) {
      return gate.description;
    }
    if (gate.metric && gate.threshold !== null) {
      return `${gate.gate}: ${gate.metric} at least ${formatMetric(gate.threshold)}`;
    }
    return gate.gate;
  });
}

/** The gate results of a promotion, each passed or failed with its metric and threshold. */
export function gateLines(gates: IGateResult[]): IGateLine[] {
  return gates.map(gate => {
    const figures =
      gate.metric && gate.value !== null
        ? `${gate.metric} ${formatMetric(gate.value)}` +
          (gate.threshold === null
            ? ''
            : `, threshold ${formatMetric(gate.threshold)}`)
        : '';
    const verdict = gate.passed ? 'passed' : 'failed';
    const parts = [`${gate.gate} ${verdict}`];
    if (figures) {
      parts.push(`(${figures})`);
    }
    if (gate.message && !gate.passed) {
      parts.push(`: ${gate.message}`);
    }
    return { gate: gate.gate, passed: gate.passed, text: parts.join(' ') };
  });
}

const SETTLED = new Set([
  'promoted',
  'refused',
  'rejected',
  'expired',
  'failed'
]);

/**
 * The outcome of a promotion in words. ``approvers`` names who may approve, as the service
 * says it ("a lead of team vision").
 */
export function outcomeView(
  promotion: IPromotion,
  approvers: string | null,
  championAlias = 'champion'
): IOutcomeView {
  const state = promotion.state;
  const gates = gateLines(promotion.gates ?? []);
  const message = promotion.message || null;
  let headline: string;
  let detail: string | null = null;
  switch (state) {
    case 'promoted':
      headline = `Promoted as ${promotion.governed_name ?? promotion.model} version ${promotion.version} with alias ${championAlias}`;
      break;
    case 'pending_approval':
      headline = `Waiting for approval by ${approvers || `a lead of team ${promotion.team}`}`;
      detail = 'The gates passed; a lead of your team decides next.';
      break;
    case 'evaluating':
      headline = "Evaluating the model on the team's held-out data…";
      break;
    case 'refused':
      headline = 'Refused: the model did not pass the gates';
      detail = message;
      break;
    case 'rejected':
      headline = `Rejected${promotion.approver ? ` by ${promotion.approver}` : ''}`;
      detail = promotion.comment || null;
      break;
    case 'expired':
      headline = 'The approval request expired before a lead decided';
      break;
    case 'failed':
      headline = 'The promotion could not be completed; nothing was changed';
      detail = message;
      break;
    default:
      headline = state;
  }
  return {
    state,
    settled: SETTLED.has(state),
    headline,
    detail,
    gates,
    hasCard: state === 'promoted' || state === 'pending_approval'
  };
}

/** The MLflow UI's page of the promoted version, from the server's link template. */
export function versionLink(
  template: string | null | undefined,
  promotion: IPromotion
): string | null {
  if (!template || !promotion.governed_name || promotion.version === null) {
    return null;
  }
  return template
    .replace('{name}', encodeURIComponent(promotion.governed_name))
    .replace('{version}', encodeURIComponent(String(promotion.version)));
}
