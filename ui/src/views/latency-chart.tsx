import { duration } from "../common";
import type { Usage } from "../types";

const BARS = ["avg", "p50", "p95", "p99", "max"] as const;

/** A small bar chart of a tool's latency figures, drawn as SVG (no chart library needed). */
export function LatencyChart({ latency }: { latency: Usage["latency_ms"] }) {
	const top = Math.max(1, ...BARS.map(bar => latency[bar] ?? 0));
	const width = 300;
	const rowHeight = 22;
	const labelWidth = 40;
	const valueWidth = 70;
	const span = width - labelWidth - valueWidth;
	return (
		<figure class="chart">
			<svg
				viewBox={`0 0 ${width} ${rowHeight * BARS.length}`}
				role="img"
				aria-labelledby="latency-caption"
				preserveAspectRatio="xMinYMin meet"
			>
				{BARS.map((bar, index) => {
					const value = latency[bar] ?? 0;
					const y = index * rowHeight;
					return (
						<g key={bar}>
							<text x={0} y={y + 15} class="chart-label">
								{bar}
							</text>
							<rect x={labelWidth} y={y + 4} height={14} width={Math.max(1, (value / top) * span)} rx={2} />
							<text x={labelWidth + Math.max(1, (value / top) * span) + 4} y={y + 15} class="chart-value">
								{duration(value)}
							</text>
						</g>
					);
				})}
			</svg>
			<figcaption id="latency-caption">
				Latency: average {duration(latency.avg)}, p95 {duration(latency.p95)}, max {duration(latency.max)}
			</figcaption>
		</figure>
	);
}
