/**
 * Placeholder dashboard. The real one (sign-in, servers, connect an IDE, activity) talks to the control contract in
 * shared/: through `window.lanyard` in the app, over HTTP in a browser.
 */
export function App() {
  const version = window.lanyard?.version;
  return (
    <main className="placeholder">
      <h1>Lanyard</h1>
      <p>Sign in once; every IDE reaches every MCP server your company allows.</p>
      <p className="muted">{version === undefined ? 'Running in a browser.' : `Version ${version}`}</p>
    </main>
  );
}
