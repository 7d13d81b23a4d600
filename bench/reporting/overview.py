"""The Overview page's answer paragraph and machine summary, and the results banner on every page."""

import math

from bench.reporting.formulas import NUMERIC_METHODS
from bench.reporting.markdown import code, counted, escape, format_mse, format_r2
from bench.reporting.provenance import commit_of
from bench.reporting.results import is_reference, ordered_methods
from bench.reporting.statistics import CONFIDENCE, summarize
from bench.reporting.tables import R2_MAX, availability_table

# The test R² that a formula equal to the target, up to constants rounded to about six significant
# digits, reaches. A formula of another form does not come close on this signal.
MATCH_R2 = 0.999999
BANNER_CLASS = "results-banner"
COMMIT_CHARS = 12


def answer_paragraph(results):
    """Return one paragraph that answers the question from the stored runs.

    It names the method with the lowest mean test MSE, the best symbolic
    method and how many symbolic runs reached MATCH_R2, and the methods that
    did not run. Each mean comes with its confidence interval. It does not claim that a formula has the true form: R²
    near 1 is necessary for that, not sufficient. Reference rows (an
    accuracy ceiling handed the target's form, floors) take no part in the
    comparison, so a sentence names them as left out.
    """
    runs = results.runs
    config = results.manifest.get("config", {})
    repetitions = config.get("run", {}).get("repetitions")
    seeds = f", with {counted(repetitions, 'seed')} per method" if repetitions else ""
    sentences = [f"On profile {code(results.profile)}{seeds},"]

    means = _mean_test_errors(runs)
    references = [method for method in means if is_reference(method)]
    means = {method: value for method, value in means.items() if method not in references}
    competitors_ran = not runs[~runs["method"].map(is_reference)].empty
    if not means and references and not competitors_ran:
        sentences[0] += " only the reference rows ran, so there is no result to compare."
    elif not means:
        others = " other than the reference rows" if references else ""
        sentences[0] += f" no method{others} finished an ok run, so there is no result to compare."
    else:
        best = min(means, key=lambda method: means[method][0].mean)
        mse, r2 = means[best]
        sentences[0] += (
            f" {code(best)} had the lowest mean test error, with mean test MSE {_with_interval(mse, format_mse)} "
            f"and test R² {_with_interval(r2, format_r2)} over {counted(mse.count, 'ok run')}."
        )
        if not r2.mean > 0:
            sentences.append("No method predicted the test samples better than their mean (R² ≤ 0).")
        sentences += _overlap_sentences(runs, best, means)
        sentences += _symbolic_sentences(runs, means)
    if references:
        names = ", ".join(code(method) for method in references)
        if len(references) == 1:
            sentences.append(f"The reference row {names} is left out of this comparison: it is not a competitor, "
                             "and the headline table lists it.")
        else:
            sentences.append(f"The reference rows {names} are left out of this comparison: they are not "
                             "competitors, and the headline table lists them.")
    sentences += _not_ok_sentences(runs)
    return " ".join(sentences) + "\n"


def machine_section(results):
    """Return the Markdown that names the machine of the bench, the methods that did not finish and why."""
    machine = results.manifest.get("machine") or {}
    versions = results.manifest.get("versions") or {}
    where = [
        f"The bench ran on {escape(machine.get('cpu') or 'an unrecorded CPU')}",
        f" with {counted(machine['cores'], 'core')}" if machine.get("cores") else "",
        f", {escape(machine['system'])}" if machine.get("system") else "",
        f", and Python {escape(versions['python'])}" if versions.get("python") else "",
        ".",
    ]
    return "".join(where) + "\n\n" + availability_table(results.runs)


def banner(results, note=""):
    """Return the Markdown of the banner that names the results' profile, date and commit on every page.

    ``note`` is a sentence appended to it, such as which runs the pages leave out.
    """
    commit, dirty = commit_of(results)
    date = results.results_date() or "an unrecorded date"
    parts = [f"Results of profile {code(results.profile)}, from runs finished by {escape(date)}"]
    if commit:
        parts.append(f", code commit {code(commit[:COMMIT_CHARS])}" + (" with uncommitted changes" if dirty else ""))
    parts.append(f", {counted(len(results.runs), 'run')}.")
    if note:
        parts.append(f" {note}")
    return f"::: {{.{BANNER_CLASS}}}\n{''.join(parts)}\n:::\n"


def _mean_test_errors(runs):
    """Return {method: (Summary of the test MSE, Summary of the test R²)} for the methods with ok runs."""
    means = {}
    for method in ordered_methods(runs["method"]):
        ok = runs[(runs["method"] == method) & (runs["status"] == "ok")]
        mse = summarize(ok["mse_test"], lower_bound=0.0)
        if mse.count:
            means[method] = (mse, summarize(ok["r2_test"], upper_bound=R2_MAX))
    return means


def _with_interval(summary, formatter):
    """Format a mean followed by its confidence interval, such as "2.00e-03 (95% CI [0.00e+00, 8.35e-03])"."""
    if summary.count == 1:
        return f"{formatter(summary.mean)} (a single ok run, so no interval)"
    return f"{formatter(summary.mean)} ({CONFIDENCE:.0%} CI [{formatter(summary.low)}, {formatter(summary.high)}])"


def _overlap_sentences(runs, best, means):
    """Say which methods' 95% intervals of the mean test MSE overlap the lowest one's, which the means alone cannot rank."""
    intervals = {}
    for method in means:
        ok = runs[(runs["method"] == method) & (runs["status"] == "ok")]
        summary = summarize(ok["mse_test"], lower_bound=0.0)
        intervals[method] = (summary.low, summary.high)
    low, high = intervals[best]
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    overlapping = [method for method, (other_low, other_high) in intervals.items()
                   if method != best and math.isfinite(other_low) and other_low <= high and low <= other_high]
    if not overlapping:
        return []
    names = ", ".join(code(method) for method in overlapping)
    # Paired runs can still rank two methods whose intervals overlap, so the sentence points to the paired test.
    return [f"Its 95% interval of the mean test MSE overlaps that of {names}, so the means alone do not rank them; "
            "the comparison of methods in pairs on the Results page resamples the runs of each seed together."]


def _symbolic_sentences(runs, means):
    symbolic = {method: value for method, value in means.items() if method not in NUMERIC_METHODS}
    if not symbolic:
        return ["No symbolic method finished an ok run."]
    best = min(symbolic, key=lambda method: symbolic[method][0].mean)
    mse, r2 = symbolic[best]
    ok = runs[(runs["method"] == best) & (runs["status"] == "ok")]
    sizes = ok["formula_size"].dropna().astype(int)
    size_text = ""
    if not sizes.empty:
        low, high = sizes.min(), sizes.max()
        size_text = f", with formulas of {counted(low, 'node') if low == high else f'{low} to {high} nodes'}"
    sentences = [f"Among the symbolic methods, {code(best)} had the lowest mean test error: mean test MSE "
                 f"{_with_interval(mse, format_mse)}, test R² {_with_interval(r2, format_r2)}{size_text}."]
    sentences += _overlap_sentences(runs, best, symbolic)

    symbolic_ok = runs[runs["method"].isin(list(symbolic)) & (runs["status"] == "ok")]
    matched = symbolic_ok[symbolic_ok["r2_test"] >= MATCH_R2]
    accuracy = "the accuracy of a formula equal to the target up to rounded constants"
    if len(symbolic_ok) == 1 and matched.empty:
        sentences.append(f"The only ok symbolic run did not reach test R² {MATCH_R2}, {accuracy}, so it did not "
                         "recover the closed form.")
    elif len(symbolic_ok) == 1:
        sentences.append(f"The only ok symbolic run reached test R² {MATCH_R2} or more; the Formulas page shows "
                         "whether its formula has the true form.")
    elif matched.empty:
        sentences.append(f"None of the {len(symbolic_ok)} ok symbolic runs reached test R² {MATCH_R2}, {accuracy}, "
                         "so none recovered the closed form.")
    else:
        sentences.append(
            f"{len(matched)} of the {len(symbolic_ok)} ok symbolic runs reached test R² {MATCH_R2} or more; "
            "the Formulas page shows whether their formulas have the true form."
        )
    return sentences


def _not_ok_sentences(runs):
    """Say which methods did not run at all, grouped by reason, and how many runs of the others failed."""
    unavailable = {}
    failed_sentences = []
    for method in ordered_methods(runs["method"]):
        method_runs = runs[runs["method"] == method]
        statuses = set(method_runs["status"])
        if statuses == {"unavailable"}:
            # The first sentence of the reason names what is missing. The rest is advice, shown on the Results page.
            reason = method_runs["reason"].iloc[0].split(". ")[0].rstrip(".") or "no reason was recorded"
            unavailable.setdefault(reason, []).append(method)
        failed = int((method_runs["status"] == "failed").sum())
        if failed == 1 and len(method_runs) == 1:
            failed_sentences.append(f"The only run of {code(method)} failed.")
        elif failed:
            failed_sentences.append(f"{failed} of the {len(method_runs)} runs of {code(method)} failed.")
    sentences = []
    for reason, methods in unavailable.items():
        names = " and ".join(code(method) for method in methods)
        sentences.append(f"{names} did not run on the machine of the bench: {escape(reason)}.")
    return sentences + failed_sentences
