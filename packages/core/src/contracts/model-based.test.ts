/**
 * Model-based test of the contracts (issue 9): a small reference model of membership, identity,
 * records, consent and access in plain TypeScript (`model.test-fixture.ts`), written from the
 * rules and not from the contracts. fast-check draws random command sequences
 * (`model-commands.test-fixture.ts`) and applies each to the model and to a real ledger (signed
 * transactions, executed in blocks); every outcome and rejection code must agree, a rejected
 * transaction must leave the state untouched, an accepted one must leave the state the model
 * describes, and shrinking gives the shortest sequence that disagrees.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createWorld, ops, seen, type Step } from './model-commands.test-fixture.ts';

/**
 * Locally every run draws new inputs; CI replays one fixed seed, so a rare input found while
 * working is fixed before it can turn main red at random. A failure prints its seed and path.
 */
const ciEnv = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
if (ciEnv?.['CI'] === 'true') fc.configureGlobal({ seed: 20261121 });

/** Sequences in all, split between the properties; MODEL_RUNS raises it to search longer, or lowers it while working. */
const RUNS = Number(ciEnv?.['MODEL_RUNS'] ?? 1000);

type Weighted = { weight: number; arbitrary: fc.Arbitrary<Step> };
const w = (weight: number, arbitrary: fc.Arbitrary<Step>): Weighted => ({ weight, arbitrary });

/** The properties, each a mix of commands aimed at one part of the rules, with the rest around it. */
const PROPERTIES: { name: string; share: number; maxCommands: number; commands: Weighted[] }[] = [
  {
    name: 'consent and access, with records and staff changing underneath',
    share: 0.4,
    maxCommands: 24,
    commands: [
      w(1, ops.register),
      w(4, ops.grant),
      w(3, ops.narrow),
      w(2, ops.revoke),
      w(3, ops.askAccess),
      w(3, ops.decide),
      w(8, ops.served),
      w(1, ops.amend),
      w(1, ops.retract),
      w(1, ops.erase),
      w(1, ops.revokeStaff),
      // issue 7: guardians consenting on a patient's behalf
      w(3, ops.appoint),
      w(1, ops.unappoint),
    ],
  },
  {
    name: 'records and identity: registration with and without asking, versions, erasure, staff and patients',
    share: 0.3,
    maxCommands: 30,
    commands: [
      w(3, ops.enrol),
      w(2, ops.revokeStaff),
      w(2, ops.registerPatient),
      w(4, ops.register),
      w(3, ops.registerAsked),
      w(3, ops.amend),
      w(3, ops.retract),
      w(2, ops.erase),
      w(3, ops.askRegistration),
      w(3, ops.answerRegistration),
      w(2, ops.served),
      w(1, ops.grant),
    ],
  },
  {
    name: 'membership: admission and removal by vote, and what members and their staff may do after',
    share: 0.3,
    maxCommands: 32,
    commands: [
      w(2, ops.admit),
      w(2, ops.remove),
      w(14, ops.vote),
      w(1, ops.endpoint),
      w(3, ops.enrol),
      w(1, ops.revokeStaff),
      w(1, ops.registerPatient),
      w(2, ops.register),
      w(1, ops.askRegistration),
      w(1, ops.askAccess),
      w(2, ops.served),
      w(1, ops.grant),
    ],
  },
];

/**
 * What the runs must reach (see `seen`): each rule's acceptance and refusals. Two rare ones are
 * checked whenever they occur but not required: an admission refused at its deciding vote, and a
 * served access for staff of a removed member.
 */
const REACHED = [
  ['membership.propose', 'OK', 'ALREADY_EXISTS', 'NOT_A_MEMBER', 'ROLE_FORBIDDEN'],
  ['membership.vote', 'OK', 'ALREADY_VOTED', 'PROPOSAL_CLOSED', 'NOT_FOUND', 'ROLE_FORBIDDEN'],
  ['proposal', 'admit accepted', 'remove accepted', 'rejected'],
  ['membership.setEndpoint', 'OK', 'TX_BODY_INVALID'],
  ['identity.enrolStaff', 'OK', 'ALREADY_EXISTS', 'ROLE_FORBIDDEN'],
  ['identity.revokeStaff', 'OK', 'NOT_FOUND', 'ROLE_FORBIDDEN', 'IDENTITY_REVOKED'],
  ['identity.registerPatient', 'OK', 'ALREADY_EXISTS', 'KEY_POSSESSION_INVALID', 'ROLE_FORBIDDEN'],
  // a removed institution's staff, and revoked staff, can no longer act
  ['staff', 'NOT_A_MEMBER', 'IDENTITY_REVOKED'],
  ['unknown', 'TX_UNKNOWN_AUTHOR'],
  [
    'records.register',
    'OK',
    'CONSENT_REQUIRED',
    'CONSENT_PENDING',
    'CONSENT_REFUSED',
    'REQUEST_CLOSED',
    'PATIENT_UNKNOWN',
    'ROLE_FORBIDDEN',
  ],
  ['records.amend', 'OK', 'TX_BODY_INVALID', 'RECORD_NOT_CUSTODIAN', 'RECORD_RETRACTED', 'RECORD_ERASED', 'RECORD_NOT_FOUND'],
  ['records.retract', 'OK', 'RECORD_RETRACTED', 'RECORD_ERASED', 'ROLE_FORBIDDEN'],
  ['records.erase', 'OK', 'ROLE_FORBIDDEN', 'RECORD_ERASED', 'RECORD_NOT_FOUND'],
  ['consent.requestRegistration', 'OK', 'PATIENT_UNKNOWN'],
  ['consent.answerRegistration', 'OK', 'REQUEST_CLOSED', 'ROLE_FORBIDDEN'],
  ['consent.grant', 'OK', 'ROLE_FORBIDDEN', 'TX_BODY_INVALID', 'GUARDIAN_OUT_OF_SCOPE'],
  ['identity.appointGuardian', 'OK', 'ROLE_FORBIDDEN', 'TX_BODY_INVALID'],
  ['identity.revokeGuardian', 'OK', 'GUARDIANSHIP_REVOKED', 'ROLE_FORBIDDEN'],
  ['consent.narrow', 'OK', 'CONSENT_NOT_NARROWER', 'CONSENT_REVOKED', 'CONSENT_NOT_FOUND', 'ROLE_FORBIDDEN'],
  ['consent.revoke', 'OK', 'CONSENT_REVOKED', 'CONSENT_NOT_FOUND', 'ROLE_FORBIDDEN'],
  ['access.request', 'OK', 'DEIDENTIFICATION_REQUIRED', 'PATIENT_UNKNOWN', 'ROLE_FORBIDDEN'],
  ['access.decide', 'OK', 'REQUEST_CLOSED', 'REQUEST_NOT_FOUND', 'ROLE_FORBIDDEN'],
  // a guardian's act, accepted or refused for its guardianship
  ['guardian', 'OK', 'GUARDIAN_OUT_OF_SCOPE', 'GUARDIANSHIP_REVOKED'],
  [
    'access.recordServed',
    'OK',
    'CONSENT_REQUIRED',
    'CONSENT_REVOKED',
    'CONSENT_PURPOSE_MISMATCH',
    'CONSENT_NOT_YET_VALID',
    'CONSENT_EXPIRED',
    'DEIDENTIFICATION_REQUIRED',
    'STUDY_REQUIRED',
    'RECORD_NOT_CUSTODIAN',
    'RECORD_NOT_FOUND',
    'RECORD_ERASED',
    'RECORD_RETRACTED',
    'IDENTITY_REVOKED',
    'NOT_FOUND',
    'ROLE_FORBIDDEN',
  ],
].flatMap(([what, ...outcomes]) => outcomes.map((o) => `${what!} ${o}`));

let completed = 0;

// The title is what docs/SECURITY.md cites; the properties together run the 1,000 sequences.
describe('agree on every outcome and rejection code over 1,000 random command sequences', () => {
  for (const p of PROPERTIES)
    it(
      p.name,
      async () => {
        await fc.assert(
          fc.asyncProperty(fc.commands([fc.oneof(...p.commands)], { maxCommands: p.maxCommands, size: 'max' }), async (cmds) => {
            const { model, world } = await createWorld();
            await fc.asyncModelRun(() => ({ model, real: world }), cmds);
          }),
          { numRuns: Math.round(RUNS * p.share) },
        );
        completed++;
      },
      600_000,
    );

  it('reached every rule in those runs', (ctx) => {
    // Only a full run of every property is expected to reach them all.
    if (RUNS < 1000 || completed < PROPERTIES.length) ctx.skip();
    expect(REACHED.filter((r) => !seen.has(r))).toEqual([]);
  });
});
