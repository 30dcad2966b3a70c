/** Condition types whose `True` is bad news (Kubernetes' "abnormal-true" polarity). */
const NEGATIVE = /^(Degraded|Failed|Failing|Stalled|Error)/;

/**
 * The class colouring a condition by what it means, not by its value:
 * `Degraded True` is bad and `Ready True` good; `Unknown` is neither.
 */
export function conditionClass(type: string, status: string): 'ok' | 'bad' | undefined {
  if (status !== 'True' && status !== 'False') return undefined;
  return (status === 'True') !== NEGATIVE.test(type) ? 'ok' : 'bad';
}
