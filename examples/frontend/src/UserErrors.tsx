import type { CombinedError } from "urql";

interface Problem {
  code: string;
  message: string;
}

/** A mutation's userErrors and the request's own error, if any, as the user should read them. */
export function Problems({ errors = [], error }: { errors?: readonly Problem[]; error?: CombinedError }) {
  if (errors.length === 0 && !error) return null;
  return (
    <ul className="problems" role="alert">
      {error && <li>{error.message}</li>}
      {errors.map((problem, index) => (
        <li key={index}>
          <code>{problem.code}</code> {problem.message}
        </li>
      ))}
    </ul>
  );
}
