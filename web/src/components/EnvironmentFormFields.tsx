import type { Expose, Isolation, MemberRole, PodSecurity, Template } from '../api/environments';
import { fieldId, newApp, newMember, type AppForm, type EnvironmentForm, type MemberForm } from '../lib/form';
import { TTL_CHOICES } from '../lib/time';
import { QuantityInput } from './QuantityInput';
import { describedBy, Field, FieldErrors } from './ui';

type Errors = Map<string, string[]>;

/**
 * Every input of the create and edit forms; each input's id is `fieldId` of
 * its server field path. Editing keeps the name (it is the namespace) and the
 * template (a record of where the settings came from), and offers no empty
 * "from the template" choices: an existing environment has every setting.
 */
export function EnvironmentFormFields({
  form,
  onChange,
  templates,
  errors,
  editing = false,
}: {
  form: EnvironmentForm;
  onChange: (form: EnvironmentForm) => void;
  templates: Template[];
  errors: Errors;
  editing?: boolean;
}) {
  const set = <K extends keyof EnvironmentForm>(key: K, value: EnvironmentForm[K]) => onChange({ ...form, [key]: value });
  const err = (path: string) => errors.get(path);
  const tpl = templates.find((t) => t.name === form.template)?.spec;
  const from = (value: string | number | null | undefined) => (value === undefined || value === null ? undefined : String(value));
  const ttlChoices: { value: string; label: string }[] =
    form.ttl && !TTL_CHOICES.some((c) => c.value === form.ttl) ? [{ value: form.ttl, label: form.ttl }, ...TTL_CHOICES] : [...TTL_CHOICES];

  const setApp = (index: number, app: AppForm) => set('apps', form.apps.map((a, i) => (i === index ? app : a)));
  const setMember = (index: number, member: MemberForm) => set('members', form.members.map((m, i) => (i === index ? member : m)));

  return (
    <>
      <fieldset>
        <legend>Basics</legend>
        <Field
          id={fieldId('name')}
          label="Name"
          hint={editing ? 'The name is the namespace: it cannot change.' : '3 to 40 lowercase letters, digits and dashes; it is also the namespace.'}
          errors={err('name')}
        >
          <input
            id={fieldId('name')}
            value={form.name}
            readOnly={editing}
            required
            autoComplete="off"
            spellCheck={false}
            aria-invalid={err('name') ? true : undefined}
            aria-describedby={describedBy(fieldId('name'), true, err('name'))}
            onChange={(e) => set('name', e.target.value)}
          />
        </Field>
        <Field id={fieldId('description')} label="Description (optional)" errors={err('description')}>
          <input id={fieldId('description')} value={form.description} onChange={(e) => set('description', e.target.value)} aria-describedby={describedBy(fieldId('description'), false, err('description'))} />
        </Field>
      </fieldset>

      {!editing && <fieldset className="templates">
        <legend>Template</legend>
        <p className="hint">A template fills every field you leave empty.</p>
        <div className="choices" id={fieldId('template')}>
          {[{ name: '', description: 'Start from the platform defaults.', spec: {} }, ...templates].map((t) => (
            <label key={t.name || 'none'} className={form.template === t.name ? 'choice selected' : 'choice'}>
              <input type="radio" name="template" value={t.name} checked={form.template === t.name} onChange={() => set('template', t.name)} />
              <span className="choice-title">{t.name || 'No template'}</span>
              <span className="choice-text">{t.description}</span>
            </label>
          ))}
        </div>
        <FieldErrors id={fieldId('template')} errors={err('template')} />
      </fieldset>}

      <fieldset>
        <legend>Quota</legend>
        <FieldErrors id={fieldId('quota')} errors={err('quota')} />
        <div className="grid">
          <QuantityInput id={fieldId('quota.cpu')} label="CPU" kind="cpu" value={form.quotaCpu} onChange={(v) => set('quotaCpu', v)} placeholder={from(tpl?.quota?.cpu)} errors={err('quota.cpu')} />
          <QuantityInput id={fieldId('quota.memory')} label="Memory" kind="bytes" value={form.quotaMemory} onChange={(v) => set('quotaMemory', v)} placeholder={from(tpl?.quota?.memory)} errors={err('quota.memory')} />
          <QuantityInput id={fieldId('quota.storage')} label="Storage" kind="bytes" value={form.quotaStorage} onChange={(v) => set('quotaStorage', v)} placeholder={from(tpl?.quota?.storage)} errors={err('quota.storage')} />
          <Field id={fieldId('quota.pods')} label="Pods" hint={tpl?.quota?.pods !== undefined ? `From the template: ${tpl.quota.pods}` : undefined} errors={err('quota.pods')}>
            <input id={fieldId('quota.pods')} type="number" min={1} inputMode="numeric" value={form.quotaPods} onChange={(e) => set('quotaPods', e.target.value)} aria-invalid={err('quota.pods') ? true : undefined} aria-describedby={describedBy(fieldId('quota.pods'), tpl?.quota?.pods !== undefined, err('quota.pods'))} />
          </Field>
        </div>
      </fieldset>

      <fieldset>
        <legend>Default limits per container</legend>
        <FieldErrors id={fieldId('limits')} errors={err('limits')} />
        <div className="grid">
          <QuantityInput id={fieldId('limits.defaultCpu')} label="Default CPU" kind="cpu" value={form.defaultCpu} onChange={(v) => set('defaultCpu', v)} placeholder={from(tpl?.limits?.defaultCpu)} errors={err('limits.defaultCpu')} />
          <QuantityInput id={fieldId('limits.defaultMemory')} label="Default memory" kind="bytes" value={form.defaultMemory} onChange={(v) => set('defaultMemory', v)} placeholder={from(tpl?.limits?.defaultMemory)} errors={err('limits.defaultMemory')} />
        </div>
      </fieldset>

      <fieldset>
        <legend>Security and lifetime</legend>
        <div className="grid">
          <Field id={fieldId('network.isolation')} label="Network" errors={err('network.isolation')}>
            <select id={fieldId('network.isolation')} value={form.isolation} onChange={(e) => set('isolation', e.target.value as Isolation | '')} aria-describedby={describedBy(fieldId('network.isolation'), false, err('network.isolation'))}>
              {!editing && <option value="">From the template{tpl?.network?.isolation ? ` (${tpl.network.isolation})` : ''}</option>}
              <option value="isolated">Isolated: only this namespace and the ingress controller reach it</option>
              <option value="open">Open: any pod in the cluster may reach it</option>
            </select>
          </Field>
          <Field id={fieldId('podSecurity')} label="Pod security" errors={err('podSecurity')}>
            <select id={fieldId('podSecurity')} value={form.podSecurity} onChange={(e) => set('podSecurity', e.target.value as PodSecurity | '')} aria-describedby={describedBy(fieldId('podSecurity'), false, err('podSecurity'))}>
              {!editing && <option value="">From the template{tpl?.podSecurity ? ` (${tpl.podSecurity})` : ''}</option>}
              <option value="restricted">Restricted: non-root, no privilege escalation</option>
              <option value="baseline">Baseline: blocks known privilege escalations only</option>
            </select>
          </Field>
          <Field id={fieldId('ttl')} label="Delete after" errors={err('ttl')}>
            <select id={fieldId('ttl')} value={form.ttl} onChange={(e) => set('ttl', e.target.value)} aria-describedby={describedBy(fieldId('ttl'), false, err('ttl'))}>
              {!editing && <option value="">From the template or policy{tpl?.ttl ? ` (${tpl.ttl})` : ''}</option>}
              {ttlChoices.map((c) => (
                <option key={c.value} value={c.value}>
                  {c.label}
                </option>
              ))}
            </select>
          </Field>
        </div>
      </fieldset>

      <fieldset>
        <legend>Apps</legend>
        <FieldErrors id={fieldId('apps')} errors={err('apps')} />
        {form.apps.length === 0 && (
          <p className="hint">{editing ? 'No apps: add one to have Berth run an image here.' : 'No apps: the namespace starts empty, ready for your own deployments.'}</p>
        )}
        {form.apps.map((app, i) => {
          const p = `apps[${i}]`;
          const e = (f: string) => err(`${p}.${f}`);
          const id = (f: string) => fieldId(`${p}.${f}`);
          const change = (patch: Partial<AppForm>) => setApp(i, { ...app, ...patch });
          return (
            <div className="row-group" key={app.key} role="group" aria-label={`App ${i + 1}`}>
              <div className="grid">
                <Field id={id('name')} label="App name" errors={e('name')}>
                  <input id={id('name')} value={app.name} onChange={(ev) => change({ name: ev.target.value })} aria-invalid={e('name') ? true : undefined} aria-describedby={describedBy(id('name'), false, e('name'))} />
                </Field>
                <Field id={id('image')} label="Image" errors={e('image')}>
                  <input id={id('image')} value={app.image} placeholder="nginx:1.27" spellCheck={false} onChange={(ev) => change({ image: ev.target.value })} aria-invalid={e('image') ? true : undefined} aria-describedby={describedBy(id('image'), false, e('image'))} />
                </Field>
                <Field id={id('replicas')} label="Replicas" errors={e('replicas')}>
                  <input id={id('replicas')} type="number" min={0} value={app.replicas} onChange={(ev) => change({ replicas: ev.target.value })} aria-describedby={describedBy(id('replicas'), false, e('replicas'))} />
                </Field>
                <Field id={id('port')} label="Port" errors={e('port')}>
                  <input id={id('port')} type="number" min={1} max={65535} value={app.port} onChange={(ev) => change({ port: ev.target.value })} aria-describedby={describedBy(id('port'), false, e('port'))} />
                </Field>
                <QuantityInput id={id('resources.cpu')} label="CPU per replica" kind="cpu" value={app.cpu} onChange={(v) => change({ cpu: v })} errors={e('resources.cpu')} />
                <QuantityInput id={id('resources.memory')} label="Memory per replica" kind="bytes" value={app.memory} onChange={(v) => change({ memory: v })} errors={e('resources.memory')} />
                <Field id={id('expose')} label="Reachable from" errors={e('expose')}>
                  <select id={id('expose')} value={app.expose} onChange={(ev) => change({ expose: ev.target.value as Expose })}>
                    <option value="none">Nowhere (no Service)</option>
                    <option value="cluster">Inside the cluster (Service)</option>
                    <option value="ingress">Outside (Service and Ingress)</option>
                  </select>
                </Field>
              </div>
              <Field id={id('env')} label="Environment variables" hint="One KEY=value per line." errors={e('env')}>
                <textarea id={id('env')} rows={2} spellCheck={false} value={app.env} onChange={(ev) => change({ env: ev.target.value })} aria-describedby={describedBy(id('env'), true, e('env'))} />
              </Field>
              <button type="button" className="secondary small" onClick={() => set('apps', form.apps.filter((_, j) => j !== i))}>
                Remove app {app.name || i + 1}
              </button>
            </div>
          );
        })}
        <button type="button" className="secondary" onClick={() => set('apps', [...form.apps, newApp()])}>
          Add an app
        </button>
      </fieldset>

      <fieldset>
        <legend>Members</legend>
        <FieldErrors id={fieldId('members')} errors={err('members')} />
        <p className="hint">{editing ? 'Owners manage members; an environment keeps at least one owner.' : 'You are an owner. Add people who should share this environment.'}</p>
        {form.members.map((m, i) => {
          const id = (f: string) => fieldId(`members[${i}].${f}`);
          const e = (f: string) => err(`members[${i}].${f}`);
          return (
            <div className="row-group inline" key={m.key} role="group" aria-label={`Member ${i + 1}`}>
              <Field id={id('email')} label="Email" errors={e('email')}>
                <input id={id('email')} type="email" value={m.email} onChange={(ev) => setMember(i, { ...m, email: ev.target.value })} aria-invalid={e('email') ? true : undefined} aria-describedby={describedBy(id('email'), false, e('email'))} />
              </Field>
              <Field id={id('role')} label="Role" errors={e('role')}>
                <select id={id('role')} value={m.role} onChange={(ev) => setMember(i, { ...m, role: ev.target.value as MemberRole })}>
                  <option value="viewer">Viewer: read only</option>
                  <option value="editor">Editor: edit workloads</option>
                  <option value="owner">Owner: also manage members</option>
                </select>
              </Field>
              <button type="button" className="secondary small" onClick={() => set('members', form.members.filter((_, j) => j !== i))}>
                Remove {m.email || `member ${i + 1}`}
              </button>
            </div>
          );
        })}
        <button type="button" className="secondary" onClick={() => set('members', [...form.members, newMember()])}>
          Add a member
        </button>
      </fieldset>
    </>
  );
}
