import { IPromotion } from '../types';
import {
  gateLines,
  gateSpecLines,
  outcomeView,
  versionLink
} from './promotion';

function promotion(overrides: Partial<IPromotion>): IPromotion {
  return {
    id: 'f'.repeat(32),
    team: 'vision',
    model: 'iris',
    governed_name: 'governed.vision.iris',
    state: 'evaluating',
    run_id: 'a'.repeat(32),
    version: null,
    previous_version: null,
    gates: [],
    approver: null,
    comment: null,
    message: null,
    ...overrides
  };
}

const PASSED = {
  gate: 'accuracy',
  metric: 'accuracy',
  value: 0.9667,
  threshold: 0.9,
  passed: true,
  message: 'accuracy 0.9667 is at least 0.9'
};
const FAILED = {
  gate: 'signature',
  metric: null,
  value: null,
  threshold: null,
  passed: false,
  message: 'the model has no signature'
};

describe('gateLines', () => {
  it('says each gate passed or failed, with metric and threshold', () => {
    expect(gateLines([PASSED, FAILED])).toEqual([
      {
        gate: 'accuracy',
        passed: true,
        text: 'accuracy passed (accuracy 0.9667, threshold 0.9)'
      },
      {
        gate: 'signature',
        passed: false,
        text: 'signature failed : the model has no signature'
      }
    ]);
  });
});

describe('gateSpecLines', () => {
  it('prefers the description, else metric and threshold, else the name', () => {
    expect(
      gateSpecLines([
        {
          gate: 'accuracy',
          metric: 'accuracy',
          threshold: 0.9,
          description: null
        },
        {
          gate: 'regression',
          metric: 'accuracy',
          threshold: null,
          description: 'no worse than the champion by more than 0.05'
        },
        { gate: 'signature', metric: null, threshold: null }
      ])
    ).toEqual([
      'accuracy: accuracy at least 0.9',
      'no worse than the champion by more than 0.05',
      'signature'
    ]);
  });
});

describe('outcomeView', () => {
  it.each([
    ['evaluating', false, false],
    ['pending_approval', false, true],
    ['promoted', true, true],
    ['refused', true, false],
    ['rejected', true, false],
    ['expired', true, false],
    ['failed', true, false]
  ])('%s: settled %p, card %p', (state, settled, card) => {
    const view = outcomeView(promotion({ state }), null);
    expect(view.settled).toBe(settled);
    expect(view.hasCard).toBe(card);
    expect(view.state).toBe(state);
  });

  it('names the version and the alias of a promotion', () => {
    const view = outcomeView(
      promotion({ state: 'promoted', version: 3, gates: [PASSED] }),
      null
    );
    expect(view.headline).toBe(
      'Promoted as governed.vision.iris version 3 with alias champion'
    );
    expect(view.gates).toHaveLength(1);
  });

  it('says who must approve', () => {
    expect(
      outcomeView(promotion({ state: 'pending_approval' }), null).headline
    ).toBe('Waiting for approval by a lead of team vision');
    expect(
      outcomeView(
        promotion({ state: 'pending_approval' }),
        'a lead of Team Vision'
      ).headline
    ).toBe('Waiting for approval by a lead of Team Vision');
  });

  it("gives the service's reason for a refusal or a failure", () => {
    const refused = outcomeView(
      promotion({
        state: 'refused',
        gates: [FAILED],
        message: 'the model has no signature'
      }),
      null
    );
    expect(refused.detail).toBe('the model has no signature');
    expect(refused.gates[0].passed).toBe(false);
    const rejected = outcomeView(
      promotion({ state: 'rejected', approver: 'v-lead', comment: 'not yet' }),
      null
    );
    expect(rejected.headline).toBe('Rejected by v-lead');
    expect(rejected.detail).toBe('not yet');
  });
});

describe('versionLink', () => {
  const template = 'http://mlflow.test/#/models/{name}/versions/{version}';

  it('fills in the governed name and version, encoded', () => {
    expect(
      versionLink(
        template,
        promotion({ governed_name: 'governed.vision.iris', version: 3 })
      )
    ).toBe('http://mlflow.test/#/models/governed.vision.iris/versions/3');
    expect(
      versionLink(template, promotion({ governed_name: 'a b', version: '1' }))
    ).toBe('http://mlflow.test/#/models/a%20b/versions/1');
  });

  it('gives no link without a template or before there is a version', () => {
    expect(versionLink(null, promotion({ version: 3 }))).toBeNull();
    expect(versionLink(template, promotion({ version: null }))).toBeNull();
  });
});
