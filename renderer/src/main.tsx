/** Renderer entry: mounts the dashboard. Runs as a sandboxed web page; see renderer/index.html for its CSP. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createLanyardClient } from './api/client';
import { App } from './App';
import './styles.css';

const container = document.getElementById('root');
if (container === null) throw new Error('renderer/index.html has no #root element');

createRoot(container).render(
  <StrictMode>
    <App client={createLanyardClient()} />
  </StrictMode>,
);
