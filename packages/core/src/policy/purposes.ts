/**
 * Purposes of use, from HL7 v3 ActReason (PurposeOfUse, code system
 * 2.16.840.1.113883.5.8), as FHIR Consent.provision.purpose carries them.
 */
export const Purposes = {
  TREAT: 'treatment',
  ETREAT: 'emergency treatment',
  BTG: 'break the glass',
  CAREMGT: 'care management',
  HOPERAT: 'healthcare operations',
  HPAYMT: 'healthcare payment',
  HRESCH: 'healthcare research',
  PUBHLTH: 'public health',
  PATRQT: 'patient requested',
} as const;
export type Purpose = keyof typeof Purposes;

export function isPurpose(value: string): value is Purpose {
  return Object.hasOwn(Purposes, value);
}

/** De-identification levels a consent may require, strictest last. */
export const DeidentificationLevels = ['identified', 'pseudonymised', 'anonymised'] as const;
export type DeidentificationLevel = (typeof DeidentificationLevels)[number];

/** True when `given` is at least as strict as `required`. */
export function atLeastAsStrict(given: DeidentificationLevel, required: DeidentificationLevel): boolean {
  return DeidentificationLevels.indexOf(given) >= DeidentificationLevels.indexOf(required);
}
