/** The table from transaction type to its body schema and contract function. */
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import type { TxType } from '../ledger/tx-types.ts';
import type { ContractInput } from './context.ts';
import * as access from './access.ts';
import * as consent from './consent.ts';
import * as groups from './groups.ts';
import * as identity from './identity.ts';
import * as membership from './membership.ts';
import * as records from './records.ts';
import * as research from './research.ts';
import * as guardians from './guardians.ts';
import * as subscriptions from './subscriptions.ts';

interface ContractEntry {
  schema: TSchema;
  run(input: ContractInput<never>): void;
}

export const Contracts: { readonly [T in TxType]: ContractEntry } = {
  'membership.propose': { schema: membership.ProposeBody, run: membership.propose },
  'membership.vote': { schema: membership.VoteBody, run: membership.vote },
  'membership.setEndpoint': { schema: membership.SetEndpointBody, run: membership.setEndpoint },
  'membership.rotateKey': { schema: membership.RotateKeyBody, run: membership.rotateKey },
  'identity.enrolStaff': { schema: identity.EnrolStaffBody, run: identity.enrolStaff },
  'identity.revokeStaff': { schema: identity.RevokeStaffBody, run: identity.revokeStaff },
  'identity.registerPatient': { schema: identity.RegisterPatientBody, run: identity.registerPatient },
  'identity.rotatePatientKeys': { schema: identity.RotatePatientKeysBody, run: identity.rotatePatientKeys },
  'identity.freezePatient': { schema: identity.FreezePatientBody, run: identity.freezePatient },
  'records.register': { schema: records.RegisterBody, run: records.register },
  'records.amend': { schema: records.AmendBody, run: records.amend },
  'records.retract': { schema: records.RetractBody, run: records.retract },
  'records.erase': { schema: records.EraseBody, run: records.erase },
  'groups.rotate': { schema: groups.RotateBody, run: groups.rotate },
  'consent.requestRegistration': { schema: consent.RequestRegistrationBody, run: consent.requestRegistration },
  'consent.answerRegistration': { schema: consent.AnswerRegistrationBody, run: consent.answerRegistration },
  'consent.grant': { schema: consent.GrantBody, run: consent.grant },
  'consent.narrow': { schema: consent.NarrowBody, run: consent.narrow },
  'consent.revoke': { schema: consent.RevokeBody, run: consent.revoke },
  'access.request': { schema: access.RequestBody, run: access.request },
  'access.decide': { schema: access.DecideBody, run: access.decide },
  'access.recordServed': { schema: access.ServedBody, run: access.recordServed },
  'access.recordRefused': { schema: access.RefusedBody, run: access.recordRefused },
  'access.breakGlass': { schema: access.BreakGlassBody, run: access.breakGlass },
  // issue 7
  'access.reviewBreakGlass': { schema: access.ReviewBreakGlassBody, run: access.reviewBreakGlass },
  'identity.setQualifications': { schema: identity.SetQualificationsBody, run: identity.setQualifications },
  'identity.appointGuardian': { schema: guardians.AppointGuardianBody, run: guardians.appointGuardian },
  'identity.revokeGuardian': { schema: guardians.RevokeGuardianBody, run: guardians.revokeGuardian },
  'subscriptions.subscribe': { schema: subscriptions.SubscribeBody, run: subscriptions.subscribe },
  'subscriptions.cancel': { schema: subscriptions.CancelBody, run: subscriptions.cancel },
  'research.registerStudy': { schema: research.RegisterStudyBody, run: research.registerStudy },
  'research.closeStudy': { schema: research.CloseStudyBody, run: research.closeStudy },
  'research.shareStudyKey': { schema: research.ShareStudyKeyBody, run: research.shareStudyKey },
  'research.openRound': { schema: research.OpenRoundBody, run: research.openRound },
  'research.submitShare': { schema: research.SubmitShareBody, run: research.submitShare },
  'research.closeShares': { schema: research.CloseSharesBody, run: research.closeShares },
  'research.revealSeeds': { schema: research.RevealSeedsBody, run: research.revealSeeds },
  'research.release': { schema: research.ReleaseBody, run: research.release },
};

const compiled = new Map<TxType, TypeCheck<TSchema>>();

/**
 * Fast check of a body against its type's schema: compiled once per type; where a page's
 * content security policy bars code generation, TypeBox's interpreter does the same check.
 */
export function bodyMatches(type: TxType, body: unknown): boolean {
  let check = compiled.get(type);
  if (check === undefined) {
    try {
      check = TypeCompiler.Compile(Contracts[type].schema);
      compiled.set(type, check);
    } catch {
      return Value.Check(Contracts[type].schema, body);
    }
  }
  return check.Check(body);
}
