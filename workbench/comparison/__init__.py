"""From scores to a verdict: paired comparisons with honest intervals, then the gate's rules.

    defaults  the confidence of every interval and the default gate (light: the configuration reads them)
    compare   paired tables per candidate: metrics, judge win rate, errors, latency and cost, slices
    gate      the rules (gate.toml or [gate]) and PASS / FAIL / INCONCLUSIVE with every rule's reason
"""
