import { useEffect, useState } from 'react';
import { environments, type Environment, type Workloads } from '../api/environments';
import { ErrorNotice } from './ui';

/** The name the browser saves the kubeconfig under (the download link's `download`). */
export function kubeconfigFile(name: string): string {
  return `${name}-kubeconfig.yaml`;
}

/** The commands that use the downloaded kubeconfig, each with what it does. */
export function connectCommands(name: string): { what: string; command: string }[] {
  const file = `~/Downloads/${kubeconfigFile(name)}`;
  return [
    { what: 'Point kubectl at the kubeconfig, in this shell', command: `export KUBECONFIG=${file}` },
    { what: 'Check that it works: lists the pods of the namespace', command: 'kubectl get pods' },
    { what: 'Deploy your own manifests into it', command: 'kubectl apply -f my-app.yaml' },
    { what: 'Reach an app from your machine', command: 'kubectl port-forward service/<app> 8080:<port>' },
  ];
}

function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState<'yes' | 'no' | ''>('');
  useEffect(() => {
    if (!copied) return;
    const timer = setTimeout(() => setCopied(''), 2000);
    return () => clearTimeout(timer);
  }, [copied]);
  return (
    <>
      <button
        type="button"
        className="secondary small"
        aria-label={`Copy: ${label}`}
        onClick={() => {
          navigator.clipboard.writeText(text).then(
            () => setCopied('yes'),
            () => setCopied('no'),
          );
        }}
      >
        Copy
      </button>
      <span className="muted small" role="status">
        {copied === 'yes' ? 'Copied' : copied === 'no' ? 'Could not copy: select the command instead' : ''}
      </span>
    </>
  );
}

/**
 * How to use the environment: kubectl with its kubeconfig, the apps' URLs,
 * and its settings in plain words (the preview's summary of the stored spec).
 */
export function Connect({ env, workloads }: { env: Environment; workloads: Workloads | undefined }) {
  const [summary, setSummary] = useState<string[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const specJson = JSON.stringify(env.spec);
  useEffect(() => {
    const controller = new AbortController();
    environments
      .preview(JSON.parse(specJson) as Environment['spec'], controller.signal)
      .then((p) => {
        setSummary(p.summary);
        setError(null);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(err);
      });
    return () => controller.abort();
  }, [specJson]);
  const hosts = (workloads?.ingresses ?? []).flatMap((i) => i.hosts);
  return (
    <section className="card connect" aria-labelledby="connect-heading">
      <h2 id="connect-heading">Connect</h2>
      <p>
        <a href={environments.kubeconfigUrl(env.name)} download={kubeconfigFile(env.name)}>
          Download the kubeconfig
        </a>{' '}
        (it works for 8 hours, with your role: {env.role}), then:
      </p>
      <ol className="commands">
        {connectCommands(env.name).map(({ what, command }) => (
          <li key={command}>
            <span className="muted small">{what}</span>
            <div className="command">
              <code>{command}</code>
              <CopyButton text={command} label={what} />
            </div>
          </li>
        ))}
      </ol>
      <h3>Apps</h3>
      {hosts.length > 0 ? (
        <ul className="plain" data-testid="app-urls">
          {hosts.map((host) => (
            <li key={host}>
              <a href={`http://${host}/`} target="_blank" rel="noreferrer">
                http://{host}/
              </a>
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">No app is reachable from outside yet: an app exposed through an ingress gets its address here.</p>
      )}
      <h3>Settings</h3>
      <ErrorNotice error={error} />
      {summary && (
        <ul className="summary" data-testid="settings-summary">
          {summary.map((line) => (
            <li key={line}>{line}</li>
          ))}
        </ul>
      )}
    </section>
  );
}
