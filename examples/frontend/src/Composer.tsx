import { useMemo, useState } from "react";
import { useMutation, useQuery } from "urql";
import { ACCOUNTS_PAGE } from "./Accounts";
import {
  AccountsDocument,
  CreatePostDocument,
  PublishPostDocument,
  SchedulePostDocument,
  ValidatePostDocument,
  type ValidatePostQuery,
} from "./gql/graphql";
import { newIdempotencyKey } from "./settings";
import { useDebounced } from "./useDebounced";
import { Problems } from "./UserErrors";

export interface StartedJob {
  id: string;
  status: string;
  postId: string;
}

interface Props {
  accountIds: readonly string[];
  onJob: (job: StartedJob) => void;
}

interface Problem {
  code: string;
  message: string;
}

const VALIDATE_AFTER_MS = 250;

/** Write a post, see each platform's counter live, then publish it now or schedule it. */
export function Composer({ accountIds, onJob }: Props) {
  const [text, setText] = useState("");
  const [publishAt, setPublishAt] = useState("");
  const [idempotencyKey, setIdempotencyKey] = useState(newIdempotencyKey);
  const [problems, setProblems] = useState<readonly Problem[]>([]);
  const [, createPost] = useMutation(CreatePostDocument);
  const [, publishPost] = useMutation(PublishPostDocument);
  const [, schedulePost] = useMutation(SchedulePostDocument);
  const [busy, setBusy] = useState(false);

  const targets = useMemo(() => accountIds.map((accountId) => ({ accountId })), [accountIds]);
  const content = useDebounced(useMemo(() => ({ text, targets }), [text, targets]), VALIDATE_AFTER_MS);
  const [{ data: validation, error: validationError, fetching: validating }] = useQuery({
    query: ValidatePostDocument,
    variables: { input: content },
    // Nothing to check before there is text: an empty post is only "not yet", not an error.
    pause: content.targets.length === 0 || content.text.trim() === "",
  });
  const verdict = validation?.validatePost;
  // Only a verdict on exactly what is on screen enables sending.
  const current = content.text === text && content.targets === targets && !validating;
  const ready = current && targets.length > 0 && text.trim() !== "" && verdict?.valid === true;

  /** createPost, then publish or schedule it; the first userErrors met stop the way. */
  async function send(when: "now" | "later") {
    setBusy(true);
    setProblems([]);
    try {
      const created = await createPost({ input: { text, targets, idempotencyKey } });
      const post = created.data?.createPost.post;
      if (!post) {
        setProblems(created.data?.createPost.userErrors ?? [errorProblem(created.error)]);
        return;
      }
      const started =
        when === "now"
          ? (await publishPost({ postId: post.id })).data?.publishPost
          : (await schedulePost({ postId: post.id, publishAt: `${publishAt}:00`, timezone: localTimezone() })).data
              ?.schedulePost;
      if (!started?.job) {
        setProblems(started?.userErrors ?? [{ code: "ERROR", message: "the post was created but not queued" }]);
        return;
      }
      onJob({ id: started.job.id, status: started.job.status, postId: post.id });
      setText("");
      setIdempotencyKey(newIdempotencyKey());
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card">
      <h2>3. Compose</h2>
      <label>
        Post text
        <textarea rows={4} value={text} onChange={(e) => setText(e.target.value)} placeholder="Hello 👋" />
      </label>
      {targets.length === 0 && <p>Choose an account to publish to.</p>}
      {text.trim() !== "" && (
        <>
          <Counters verdict={verdict} />
          <Problems errors={verdict?.userErrors} error={validationError} />
        </>
      )}
      <div className="actions">
        <button type="button" disabled={!ready || busy} onClick={() => send("now")}>
          Publish now
        </button>
        <label className="inline">
          Publish at
          <input type="datetime-local" value={publishAt} onChange={(e) => setPublishAt(e.target.value)} />
          <small>{localTimezone()}</small>
        </label>
        <button type="button" disabled={!ready || busy || publishAt === ""} onClick={() => send("later")}>
          Schedule
        </button>
      </div>
      <Problems errors={problems} />
    </section>
  );
}

/** Each target's length in its platform's own unit against that platform's limit. */
function Counters({ verdict }: { verdict: ValidatePostQuery["validatePost"] | undefined }) {
  const [{ data }] = useQuery({ query: AccountsDocument, variables: ACCOUNTS_PAGE });
  const handles = new Map((data?.accounts?.nodes ?? []).map((account) => [account.id, account.handle]));
  if (!verdict) return null;
  return (
    <ul className="counters">
      {verdict.targets.map((target) => {
        const over = target.textLimit !== null && target.textLength !== null && target.textLength > target.textLimit;
        return (
          <li key={target.index} className={over ? "counter over" : "counter"} data-account-id={target.accountId}>
            <span>
              {target.provider} @{handles.get(target.accountId) ?? target.accountId}
            </span>{" "}
            <output>
              {target.textLength ?? "?"} / {target.textLimit ?? "∞"} {target.textUnit}
            </output>
            {target.issues.map((issue, index) => (
              <small key={index}> {issue.message}</small>
            ))}
          </li>
        );
      })}
    </ul>
  );
}

function localTimezone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

function errorProblem(error: Error | undefined): Problem {
  return { code: "ERROR", message: error?.message ?? "no answer" };
}
