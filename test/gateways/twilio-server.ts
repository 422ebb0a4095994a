import { createHmac, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { CallbackRequest } from '../../controller/gateways/gateway.ts';
import { basicCredentials, BehaviourQueue, misbehave, sendJson, startFakeServer, type FakeServer, type RecordedRequest } from './fake-http.ts';
import { logScan } from '../helpers/log-scan.ts';

/** FakeTwilio is a local Twilio-compatible REST API (2010-04-01 Accounts and Messages). */
export interface FakeTwilio extends FakeServer {
  baseUrl: string;
  behaviours: BehaviourQueue;
  /** Form parameters of the Messages requests that passed authentication. */
  messages: Record<string, string>[];
  /** callback builds a status callback as Twilio POSTs it to a message's StatusCallback, signed with X-Twilio-Signature. */
  callback(url: string, params: Record<string, string>, options?: { authToken?: string }): CallbackRequest;
}

/**
 * startTwilioServer serves `POST /2010-04-01/Accounts/{Sid}/Messages.json` (form-encoded, Basic
 * auth with the Account SID and Auth Token) and `GET /2010-04-01/Accounts/{Sid}.json` as Twilio
 * documents them, including error bodies `{code, message, more_info, status}` whose message, like
 * Twilio's, repeats the number.
 */
export async function startTwilioServer(account: { accountSid: string; authToken: string }): Promise<FakeTwilio> {
  logScan.secret('Twilio auth token', account.authToken);
  const behaviours = new BehaviourQueue();
  const messages: Record<string, string>[] = [];
  const server = await startFakeServer((req, res) => handle(req, res));

  function error(res: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
    sendJson(res, status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }, headers);
  }

  function handle(req: RecordedRequest, res: ServerResponse): void {
    const match = /^\/2010-04-01\/Accounts\/([^/]+?)(\.json|\/Messages\.json)$/.exec(req.url.split('?')[0]!);
    const creds = basicCredentials(req.headers.authorization);
    if (creds === undefined || creds.user !== account.accountSid || creds.password !== account.authToken) return error(res, 401, 20003, 'Authenticate');
    if (match === null || decodeURIComponent(match[1]!) !== account.accountSid) return error(res, 404, 20404, 'The requested resource was not found');
    if (match[2] === '.json') {
      if (req.method !== 'GET') return error(res, 405, 20004, 'Method not allowed');
      return sendJson(res, 200, { sid: account.accountSid, friendly_name: 'Fake Twilio', status: 'active', type: 'Full' });
    }
    if (req.method !== 'POST') return error(res, 405, 20004, 'Method not allowed');
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return error(res, 400, 20001, 'Unsupported content type');
    const form = Object.fromEntries(new URLSearchParams(req.body));
    if (form.To === undefined) return error(res, 400, 21604, "A 'To' phone number is required.");
    if (form.Body === undefined) return error(res, 400, 21602, 'Message body is required.');
    if (form.From === undefined && form.MessagingServiceSid === undefined) return error(res, 400, 21603, "A 'From' phone number is required.");
    const validity = form.ValidityPeriod === undefined ? undefined : Number(form.ValidityPeriod);
    if (validity !== undefined && !(Number.isInteger(validity) && validity >= 1 && validity <= 36_000))
      return error(res, 400, 21624, 'Invalid validity period value');
    messages.push(form);
    logScan.message(form.To ?? '', form.Body);
    const behaviour = behaviours.next();
    const accept = (): void => {
      const sid = `SM${randomBytes(16).toString('hex')}`;
      const segments = form.Body!.length <= 160 ? 1 : Math.ceil(form.Body!.length / 153);
      sendJson(res, 201, {
        sid,
        account_sid: account.accountSid,
        to: form.To,
        from: form.From ?? null,
        messaging_service_sid: form.MessagingServiceSid ?? null,
        body: form.Body,
        status: 'queued',
        num_segments: String(segments),
        direction: 'outbound-api',
        api_version: '2010-04-01',
        error_code: null,
        error_message: null,
        uri: `/2010-04-01/Accounts/${account.accountSid}/Messages/${sid}.json`,
      });
    };
    if (misbehave(behaviour, res, accept)) return;
    switch (behaviour) {
      case 'ok':
        return accept();
      case 'invalid-number':
        return error(res, 400, 21211, `The 'To' number ${form.To} is not a valid phone number.`);
      case 'forbidden':
        return error(res, 400, 21408, `Permission to send an SMS has not been enabled for the region indicated by the 'To' number: ${form.To}.`);
      case 'insufficient-funds':
        return error(res, 401, 20005, 'Account not active');
      case 'rate-limited':
        return error(res, 429, 20429, 'Too Many Requests');
      case 'server-error':
        return error(res, 500, 20500, 'An internal server error has occurred');
      case 'rejected':
        return error(
          res,
          400,
          21606,
          `The From phone number ${form.From ?? ''} is not a valid, SMS-capable inbound phone number or short code for your account.`,
        );
    }
  }

  return {
    ...server,
    baseUrl: server.origin,
    behaviours,
    messages,
    callback(url, params, options = {}) {
      let data = url;
      for (const k of Object.keys(params).sort()) data += k + params[k];
      const signature = createHmac('sha1', options.authToken ?? account.authToken)
        .update(data)
        .digest('base64');
      return {
        url,
        method: 'POST',
        headers: {
          'x-twilio-signature': signature,
          'content-type': 'application/x-www-form-urlencoded',
          'i-twilio-idempotency-token': randomBytes(8).toString('hex'),
        },
        body: Buffer.from(new URLSearchParams(params).toString()),
      };
    },
  };
}
