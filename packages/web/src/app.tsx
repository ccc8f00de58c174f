/** The app's frame: a skip link, the navigation for who is signed in, and the page for the path. */
import { useEffect, useState } from 'react';
import { listIdentities } from './keys/key-store.ts';
import { SessionContext, forgetLastSession, lastKeyId, openSession, type Session } from './session.ts';
import { SignIn } from './sign-in.tsx';
import { RegisterRecord } from './portal/register-record.tsx';
import { PatientRecords } from './portal/patient-records.tsx';
import { Transactions } from './portal/transactions.tsx';
import { AccessRequests } from './portal/access-requests.tsx';
import { PatientPortal } from './patient/patient-portal.tsx';
import { NetworkView } from './network/network-view.tsx';
import { Link, navigate, usePath } from './ui/router.tsx';

function Page({ session, path }: { session: Session | null; path: string }) {
  if (path === '/network') return <NetworkView />;
  if (session === null || path === '/' || path === '/sign-in') return <SignIn />;
  if (session.kind === 'staff') {
    if (path === '/institution/register') return <RegisterRecord />;
    if (path === '/institution/transactions') return <Transactions />;
    if (path === '/institution/access') return <AccessRequests />;
    return <PatientRecords />;
  }
  if (session.kind === 'patient') return <PatientPortal />;
  return <NetworkView />;
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(true);
  const path = usePath();

  useEffect(() => {
    // After a reload: sign in again with the identity used last, if this browser still holds it.
    const last = lastKeyId();
    void (async () => {
      try {
        const stored = (await listIdentities()).find((s) => s.keyId === last);
        if (stored !== undefined) setSession(await openSession(stored));
      } catch {
        forgetLastSession();
      } finally {
        setRestoring(false);
      }
    })();
  }, []);

  const who = session?.owner?.staff;
  return (
    <SessionContext.Provider value={{ session, setSession }}>
      <a href="#main" className="skip">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">medledger</span>
        <nav aria-label="Main">
          {session?.kind === 'staff' && (
            <>
              <Link to="/institution/records">Records</Link>
              <Link to="/institution/register">Register</Link>
              <Link to="/institution/transactions">Transactions</Link>
              <Link to="/institution/access">Access requests</Link>
            </>
          )}
          {session?.kind === 'patient' && <Link to="/patient">My records</Link>}
          <Link to="/network">Network</Link>
        </nav>
        <span className="who">
          {session === null ? (
            <Link to="/sign-in">Sign in</Link>
          ) : (
            <>
              <span data-signed-in={session.identity.keyId}>
                {who ? `${who.displayName} · ${who.role} · ${who.institution}` : session.stored.label}
                {session.stored.synthetic && <span className="badge">synthetic demo key</span>}
              </span>
              <button
                type="button"
                className="link"
                onClick={() => {
                  forgetLastSession();
                  setSession(null);
                  navigate('/sign-in');
                }}
              >
                Sign out
              </button>
            </>
          )}
        </span>
      </header>
      {restoring ? (
        <main id="main" className="page">
          <p role="status">Loading…</p>
        </main>
      ) : (
        <Page session={session} path={path} />
      )}
    </SessionContext.Provider>
  );
}
