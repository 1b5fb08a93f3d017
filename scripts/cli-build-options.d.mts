import type { BuildOptions, Plugin } from 'esbuild';

export declare const forbidElectron: Plugin;

export declare function cliBuildOptions(options: {
  root: string;
  entry?: string;
  outfile?: string;
  plugins?: Plugin[];
}): BuildOptions & { metafile: true; plugins: Plugin[] };
