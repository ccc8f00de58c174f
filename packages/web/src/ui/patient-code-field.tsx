/** A patient code input; in the demo it suggests the synthetic patients' codes. */
import { getJson } from '../ledger/node-api.ts';
import type { DemoIdentity } from '../ledger/ledger-types.ts';
import { useLoad } from './use-async.ts';

export function PatientCodeField({ id, value, onChange }: { id: string; value: string; onChange: (v: string) => void }) {
  const demo = useLoad(() => getJson<DemoIdentity[]>('/api/demo/identities').catch(() => [] as DemoIdentity[]), []);
  const patients = (demo.data ?? []).filter((d) => d.patientCode !== null);
  return (
    <>
      <label htmlFor={id}>Patient code</label>
      <input
        id={id}
        name="patientCode"
        className="mono"
        value={value}
        onChange={(e) => onChange(e.target.value.trim().toLowerCase())}
        list={patients.length > 0 ? `${id}-list` : undefined}
        pattern="[0-9a-f]{64}"
        title="64 hexadecimal characters"
        required
        autoComplete="off"
        spellCheck={false}
        aria-describedby={`${id}-hint`}
      />
      <small id={`${id}-hint`}>The patient’s pseudonymous code (a keyed hash of their national id), 64 hexadecimal characters.</small>
      {patients.length > 0 && (
        <datalist id={`${id}-list`}>
          {patients.map((p) => (
            <option key={p.name} value={p.patientCode ?? ''}>
              {p.displayName}
            </option>
          ))}
        </datalist>
      )}
    </>
  );
}

export const PATIENT_CODE = /^[0-9a-f]{64}$/;
