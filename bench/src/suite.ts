/** What every bench suite gets from the CLI. */
export interface SuiteOptions {
  /** Smoke run: same cases, small counts, results in <suite>.quick.json. */
  readonly quick: boolean;
  readonly connectionString: string;
}

/** Runs the suite, prints its table; resolves false when any system failed. */
export type Suite = (options: SuiteOptions) => Promise<boolean>;
