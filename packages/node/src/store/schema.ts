/**
 * The node's SQLite schema: blocks, the transaction index, and the world state as one table
 * per state table. Columns that queries filter on are copies of fields of the JSON value,
 * written with it and indexed; the value stays the source of truth and `verify` checks both.
 */
import { StateTables, type StateTable } from '@medledger/core/contracts/state';

export const SCHEMA_VERSION = 1;

/** Indexed columns per state table: [column, field of the value, SQL type]. */
export const QUERY_COLUMNS: Partial<Record<StateTable, readonly (readonly [string, string, 'TEXT' | 'INTEGER'])[]>> = {
  records: [
    ['patient_code', 'patientCode', 'TEXT'],
    ['category', 'category', 'TEXT'],
    ['custodian', 'custodian', 'TEXT'],
    ['registered_at', 'registeredAt', 'INTEGER'],
  ],
  consents: [['patient_code', 'patientCode', 'TEXT']],
  accessRequests: [
    ['patient_code', 'patientCode', 'TEXT'],
    ['created_at', 'createdAt', 'INTEGER'],
  ],
  regRequests: [
    ['patient_code', 'patientCode', 'TEXT'],
    ['created_at', 'createdAt', 'INTEGER'],
  ],
  accessLog: [
    ['patient_code', 'patientCode', 'TEXT'],
    ['time', 'time', 'INTEGER'],
  ],
  reviews: [['status', 'status', 'TEXT']],
  proposals: [['created_at', 'createdAt', 'INTEGER']],
  studies: [['registered_at', 'registeredAt', 'INTEGER']],
  rounds: [
    ['study_id', 'studyId', 'TEXT'],
    ['opened_at', 'openedAt', 'INTEGER'],
  ],
  // issue 7
  subscriptions: [['patient_code', 'patientCode', 'TEXT']],
  guardianships: [
    ['patient_code', 'patientCode', 'TEXT'],
    ['guardian_code', 'guardian', 'TEXT'],
  ],
};

const INDEXES: string[] = [
  'CREATE INDEX IF NOT EXISTS s_records_patient ON s_records(patient_code, registered_at)',
  'CREATE INDEX IF NOT EXISTS s_records_custodian ON s_records(custodian, registered_at)',
  'CREATE INDEX IF NOT EXISTS s_consents_patient ON s_consents(patient_code)',
  'CREATE INDEX IF NOT EXISTS s_accessRequests_patient ON s_accessRequests(patient_code, created_at)',
  'CREATE INDEX IF NOT EXISTS s_regRequests_patient ON s_regRequests(patient_code, created_at)',
  'CREATE INDEX IF NOT EXISTS s_accessLog_patient ON s_accessLog(patient_code, time)',
  'CREATE INDEX IF NOT EXISTS s_reviews_status ON s_reviews(status)',
  'CREATE INDEX IF NOT EXISTS s_rounds_study ON s_rounds(study_id, opened_at)',
  'CREATE INDEX IF NOT EXISTS s_subscriptions_patient ON s_subscriptions(patient_code)',
  'CREATE INDEX IF NOT EXISTS s_guardianships_patient ON s_guardianships(patient_code)',
  'CREATE INDEX IF NOT EXISTS s_guardianships_guardian ON s_guardianships(guardian_code)',
];

export function stateTableName(table: StateTable): string {
  return `s_${table}`;
}

export function schemaStatements(): string[] {
  const out = [
    'CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID',
    `CREATE TABLE IF NOT EXISTS blocks (
       height INTEGER PRIMARY KEY,
       hash TEXT NOT NULL UNIQUE,
       header TEXT NOT NULL,
       txs TEXT NOT NULL,
       codes TEXT NOT NULL
     )`,
    `CREATE TABLE IF NOT EXISTS txs (
       tx_id TEXT PRIMARY KEY,
       height INTEGER NOT NULL,
       idx INTEGER NOT NULL,
       code TEXT NOT NULL,
       author TEXT NOT NULL,
       nonce TEXT NOT NULL,
       type TEXT NOT NULL
     ) WITHOUT ROWID`,
    // Replay protection: a nonce is spent by a valid transaction (DESIGN §4).
    "CREATE UNIQUE INDEX IF NOT EXISTS txs_nonce ON txs(author, nonce) WHERE code = 'OK'",
  ];
  for (const t of StateTables) {
    const gen = (QUERY_COLUMNS[t] ?? []).map(([col, , type]) => `, ${col} ${type}`);
    out.push(`CREATE TABLE IF NOT EXISTS ${stateTableName(t)} (key TEXT PRIMARY KEY, value TEXT NOT NULL${gen.join('')}) WITHOUT ROWID`);
  }
  return [...out, ...INDEXES];
}
