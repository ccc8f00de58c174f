/** Check boxes for kinds of record (the FHIR resource types a vault accepts), as a fieldset. */
export function CategoryChecklist({
  legend,
  options,
  selected,
  onChange,
}: {
  legend: string;
  options: readonly string[];
  selected: readonly string[];
  onChange: (next: string[]) => void;
}) {
  return (
    <fieldset>
      <legend>{legend}</legend>
      {options.map((c) => (
        <label key={c} className="inline">
          <input
            type="checkbox"
            checked={selected.includes(c)}
            onChange={(e) => onChange(e.target.checked ? [...selected, c] : selected.filter((x) => x !== c))}
          />{' '}
          {c}
        </label>
      ))}
    </fieldset>
  );
}
