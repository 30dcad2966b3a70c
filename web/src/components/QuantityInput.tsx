import { describedBy, FieldErrors } from './ui';
import { unitsFor, type QuantityKind, type QuantityValue } from '../lib/quantity';

/** An amount and its unit, sent as one Kubernetes quantity such as `500m` or `4Gi`. */
export function QuantityInput({
  id,
  label,
  kind,
  value,
  onChange,
  placeholder,
  errors,
}: {
  id: string;
  label: string;
  kind: QuantityKind;
  value: QuantityValue;
  onChange: (value: QuantityValue) => void;
  placeholder?: string | undefined;
  errors?: string[] | undefined;
}) {
  const hasHint = Boolean(placeholder);
  return (
    <div className={errors && errors.length > 0 ? 'field invalid' : 'field'}>
      <label htmlFor={id}>{label}</label>
      <div className="quantity">
        <input
          id={id}
          inputMode="decimal"
          value={value.amount}
          placeholder={placeholder}
          aria-invalid={errors && errors.length > 0 ? true : undefined}
          aria-describedby={describedBy(id, hasHint, errors)}
          onChange={(e) => onChange({ ...value, amount: e.target.value })}
        />
        <select aria-label={`${label} unit`} value={value.unit} onChange={(e) => onChange({ ...value, unit: e.target.value })}>
          {unitsFor(kind).map((u) => (
            <option key={u.suffix} value={u.suffix}>
              {u.label}
            </option>
          ))}
        </select>
      </div>
      {hasHint && (
        <p className="hint" id={`${id}-hint`}>
          From the template: {placeholder}
        </p>
      )}
      <FieldErrors id={id} errors={errors} />
    </div>
  );
}
