/** Prints one plain "N passed, N failed" line at the end so CI can read the outcome of the run. */
class SummaryReporter {
	onRunComplete(_contexts, results) {
		const skipped = results.numPendingTests + results.numTodoTests;
		process.stdout.write(
			`\n${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped\n`
		);
	}
}
module.exports = SummaryReporter;
