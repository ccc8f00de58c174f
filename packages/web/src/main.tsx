/** Entry point: installs the browser's signing backend before anything signs, then renders. */
import './buffer-global.ts';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { installBrowserKeys } from './keys/browser-keys.ts';
import { App } from './app.tsx';
import './styles.css';

installBrowserKeys();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
