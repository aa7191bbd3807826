// The parser the /metrics test reads the exposition with (it ships no types).
declare module 'parse-prometheus-text-format' {
  interface Sample {
    value?: string;
    labels?: Record<string, string>;
    count?: string;
    sum?: string;
    quantiles?: Record<string, string>;
  }
  export default function parse(
    text: string,
  ): Array<{ name: string; help: string; type: string; metrics: Sample[] }>;
}
