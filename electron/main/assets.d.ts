/**
 * electron-vite's `?asset` imports (main process): the file is emitted next to the bundle and the import is its
 * absolute path at run time, so the tray icons ship inside out/ (electron-builder packages only out/**).
 */
declare module '*?asset' {
  const path: string;
  // The shape electron-vite gives these modules; not one of our own exports.
  // eslint-disable-next-line no-restricted-syntax
  export default path;
}
