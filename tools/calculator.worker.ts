/**
 * Worker-thread side of the calculator tool: parses an expression with a locked-down mathjs instance,
 * checks the syntax tree against allow-lists and evaluates it. Runs inside a piscina pool so the main
 * thread can terminate it when it overruns its time or memory budget.
 */
import { all, create, type MathNode } from "mathjs";
import { parentPort, threadId } from "node:worker_threads";
import {
	batchViews,
	DONE,
	QUEUED,
	TAKEN,
	type CalculatorBatch,
	type CalculatorOutcome,
	type WorkerLoaded
} from "./calculator.protocol";

const MAX_NESTING = 32;
const MAX_DEPTH = 200;
const MAX_NODES = 1000;
const MAX_RANGE_ELEMENTS = 10_000;
const MAX_RESULT_ELEMENTS = 10_000;
const MAX_RESULT_CHARS = 10_000;

// A private instance, so the lockdown below cannot leak into other users of mathjs in this thread.
const math = create(all);
// Kept before the lockdown replaces them in the namespace the expressions see.
const parse = math.parse;

/**
 * Functions that change the instance, parse or evaluate strings or build symbolic trees: the mathjs
 * security guide's list plus their relatives. The allow-lists below already keep expressions away from
 * them; this is the second line of defence. Callback takers (`map`, `filter`, ...) stay, as allowed
 * functions such as `mad` are built on them, and an expression can neither name nor define a callback.
 */
const DISABLED = [
	"import",
	"createUnit",
	"reviver",
	"replacer",
	"evaluate",
	"parse",
	"compile",
	"parser",
	"chain",
	"simplify",
	"simplifyConstant",
	"simplifyCore",
	"derivative",
	"resolve",
	"rationalize",
	"symbolicEqual",
	"leafCount",
	"help"
];
math.import(
	Object.fromEntries(
		DISABLED.map(name => [
			name,
			() => {
				throw new Error(`function ${name} is disabled`);
			}
		])
	),
	{ override: true }
);

/** Functions an expression may call: pure maths with results no larger than their inputs. */
const FUNCTIONS = new Set([
	"abs",
	"add",
	"cbrt",
	"ceil",
	"cube",
	"divide",
	"exp",
	"expm1",
	"fix",
	"floor",
	"gcd",
	"hypot",
	"lcm",
	"log",
	"log10",
	"log1p",
	"log2",
	"mod",
	"multiply",
	"norm",
	"nthRoot",
	"pow",
	"round",
	"sign",
	"sqrt",
	"square",
	"subtract",
	"unaryMinus",
	"unaryPlus",
	"combinations",
	"permutations",
	"factorial",
	"gamma",
	"lgamma",
	"erf",
	"isPrime",
	"arg",
	"conj",
	"im",
	"re",
	"complex",
	"sin",
	"cos",
	"tan",
	"sec",
	"csc",
	"cot",
	"asin",
	"acos",
	"atan",
	"atan2",
	"asec",
	"acsc",
	"acot",
	"sinh",
	"cosh",
	"tanh",
	"sech",
	"csch",
	"coth",
	"asinh",
	"acosh",
	"atanh",
	"asech",
	"acsch",
	"acoth",
	"max",
	"min",
	"mean",
	"median",
	"mode",
	"prod",
	"std",
	"sum",
	"variance",
	"mad",
	"det",
	"inv",
	"transpose",
	"trace",
	"dot",
	"cross",
	"to",
	"isInteger",
	"isNegative",
	"isPositive",
	"isZero",
	"isNaN",
	"compare",
	"equal",
	"unequal",
	"larger",
	"smaller",
	"largerEq",
	"smallerEq",
	"and",
	"or",
	"not",
	"xor"
]);

const COMPARISONS = ["equal", "unequal", "smaller", "larger", "smallerEq", "largerEq"];

/** Every function the parser itself emits for an operator (`+`, `to`, `!`, `'`, `??`, ...). */
const OPERATORS = new Set([
	...COMPARISONS,
	"add",
	"subtract",
	"multiply",
	"divide",
	"dotMultiply",
	"dotDivide",
	"dotPow",
	"pow",
	"mod",
	"unaryMinus",
	"unaryPlus",
	"factorial",
	"ctranspose",
	"to",
	"and",
	"or",
	"xor",
	"not",
	"bitAnd",
	"bitOr",
	"bitXor",
	"bitNot",
	"leftShift",
	"rightArithShift",
	"rightLogShift",
	"nullish"
]);

/** Constants of the namespace an expression may name (units and physical constants are checked apart). */
const CONSTANTS = new Set([
	"pi",
	"PI",
	"e",
	"E",
	"i",
	"tau",
	"phi",
	"Infinity",
	"NaN",
	"LN2",
	"LN10",
	"LOG2E",
	"LOG10E",
	"SQRT1_2",
	"SQRT2"
]);

/** Names for the node types we refuse, so the error tells an agent what to change. */
const REFUSED: Record<string, string> = {
	AssignmentNode: "assignments",
	FunctionAssignmentNode: "function definitions",
	AccessorNode: "property and index access",
	IndexNode: "property and index access",
	ObjectNode: "objects",
	BlockNode: "multiple statements"
};

/**
 * Evaluates a batch in order. Each expression is claimed in shared memory first, so the main thread
 * knows which one is running (the one to stop if it overruns) and can take back those not yet started.
 */
export default function evaluateBatch({
	expressions,
	deadlines,
	shared
}: CalculatorBatch): CalculatorOutcome[] {
	const { states, starts } = batchViews(shared, expressions.length);
	return expressions.map((expression, i) => {
		// The start time is written first, so the main thread never sees a claim without it.
		starts[i] = Date.now();
		if (Atomics.compareExchange(states, i, QUEUED, TAKEN) !== QUEUED) return null;
		try {
			if (starts[i] > deadlines[i]) return { expired: true };
			return { value: evaluateExpression(expression) };
		} catch (err) {
			return { error: err instanceof Error ? err.message : String(err) };
		} finally {
			Atomics.store(states, i, DONE);
		}
	});
}

function evaluateExpression(expression: string): number | string {
	checkNesting(expression);
	const tree = parse(expression);
	const limits = { nodes: 0, rangeElements: 0 };
	check(tree, 1, limits);
	return toValue(tree.compile().evaluate(new Map()));
}

/** Bounds bracket nesting before parsing: the parser recurses through a dozen functions per level. */
function checkNesting(expression: string): void {
	let depth = 0;
	for (const char of expression) {
		if (char === "(" || char === "[" || char === "{") {
			depth++;
			if (depth > MAX_NESTING) {
				throw new Error(`brackets nested deeper than ${MAX_NESTING} levels`);
			}
		} else if (char === ")" || char === "]" || char === "}") {
			depth--;
		}
	}
}

function check(node: MathNode, depth: number, limits: { nodes: number; rangeElements: number }): void {
	if (depth > MAX_DEPTH) {
		throw new Error(`expression nested deeper than ${MAX_DEPTH} levels`);
	}
	if (++limits.nodes > MAX_NODES) {
		throw new Error(`expression has more than ${MAX_NODES} parts`);
	}
	const children: MathNode[] = [];
	if (math.isConstantNode(node)) {
		if (typeof node.value !== "number" && typeof node.value !== "boolean") {
			throw new Error("only numbers and booleans may appear as literals");
		}
	} else if (math.isSymbolNode(node)) {
		checkSymbol(node.name);
	} else if (math.isOperatorNode(node)) {
		if (!OPERATORS.has(node.fn)) {
			throw new Error(`operator ${node.op} is not allowed`);
		}
		children.push(...node.args);
	} else if (math.isFunctionNode(node)) {
		// The callee is checked by name only; walking it as a symbol would treat it as a value.
		if (!math.isSymbolNode(node.fn)) {
			throw new Error("only named functions may be called");
		}
		if (!FUNCTIONS.has(node.fn.name)) {
			throw new Error(`function ${node.fn.name} is not allowed`);
		}
		children.push(...node.args);
	} else if (math.isParenthesisNode(node)) {
		children.push(node.content);
	} else if (math.isArrayNode(node)) {
		children.push(...node.items);
	} else if (math.isConditionalNode(node)) {
		children.push(node.condition, node.trueExpr, node.falseExpr);
	} else if (math.isRelationalNode(node)) {
		if (!node.conditionals.every(name => COMPARISONS.includes(name))) {
			throw new Error("comparison is not allowed");
		}
		children.push(...node.params);
	} else if (math.isRangeNode(node)) {
		limits.rangeElements += rangeLength(node.start, node.end, node.step);
		if (limits.rangeElements > MAX_RANGE_ELEMENTS) {
			throw new Error(`ranges may hold at most ${MAX_RANGE_ELEMENTS} elements in all`);
		}
	} else {
		throw new Error(`not allowed: ${REFUSED[node.type] ?? node.type}`);
	}
	for (const child of children) {
		check(child, depth + 1, limits);
	}
}

/**
 * A bare name is a constant, a physical constant (a Unit in the namespace) or a unit such as `km`;
 * anything else in the namespace (functions, `config`, prototype members) is refused.
 */
function checkSymbol(name: string): void {
	if (CONSTANTS.has(name)) {
		return;
	}
	const allowed =
		name in math
			? Object.hasOwn(math, name) && math.isUnit(math[name as keyof typeof math])
			: math.Unit.isValuelessUnit(name);
	if (!allowed) {
		throw new Error(`symbol ${name} is not allowed`);
	}
}

/** Ranges must have literal bounds so their size is known before anything is allocated. */
function rangeLength(start: MathNode, end: MathNode, step: MathNode | null): number {
	const from = literal(start);
	const to = literal(end);
	const by = step ? literal(step) : 1;
	if (!Number.isFinite(from) || !Number.isFinite(to) || !Number.isFinite(by) || by === 0) {
		throw new Error("range bounds and step must be finite number literals and the step non-zero");
	}
	return Math.max(0, Math.floor((to - from) / by) + 1);
}

function literal(node: MathNode): number {
	if (math.isConstantNode(node) && typeof node.value === "number") {
		return node.value;
	}
	if (math.isOperatorNode(node) && node.fn === "unaryMinus" && node.args.length === 1) {
		return -literal(node.args[0]);
	}
	return NaN;
}

/** A finite number stays a number; everything else becomes its mathjs text form, within size caps. */
function toValue(result: unknown): number | string {
	if (typeof result === "number" && Number.isFinite(result)) {
		return result;
	}
	if (result === undefined || result === null || typeof result === "function") {
		throw new Error("expression has no value");
	}
	const elements = math.isMatrix(result) ? result.size().reduce((count, length) => count * length, 1) : 1;
	if (elements > MAX_RESULT_ELEMENTS) {
		throw new Error(`result has more than ${MAX_RESULT_ELEMENTS} elements`);
	}
	const text = math.format(result, { precision: 14 });
	if (text.length > MAX_RESULT_CHARS) {
		throw new Error(`result is longer than ${MAX_RESULT_CHARS} characters`);
	}
	return text;
}

parentPort?.postMessage({ calculatorWorkerLoaded: threadId } satisfies WorkerLoaded);
