package check

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"

	"github.com/platzwart/platzwart/reconciler/contract"
)

// bbbAPI is the BigBlueButton API a Greenlight release talks to: servers[0] of its
// values, pointing at the server in the cluster.
type bbbAPI struct {
	// endpoint is the API base URL with a trailing slash, e.g.
	// https://meet.example.org/bigbluebutton/ (Greenlight appends api/).
	endpoint string
	// secret holds the shared secret.
	secret contract.SecretRef
}

// bbbAPIOf reads the API of the server a bigbluebutton release runs in the cluster
// (values server.enabled) from its planned values; nil for an existing server outside
// (whose Secret and reachability are the operator's) or when they name none.
func bbbAPIOf(values map[string]any) *bbbAPI {
	server, _ := values["server"].(map[string]any)
	if enabled, _ := server["enabled"].(bool); !enabled {
		return nil
	}
	servers, _ := values["servers"].([]any)
	if len(servers) == 0 {
		return nil
	}
	s, _ := servers[0].(map[string]any)
	u, _ := s["url"].(string)
	sec, _ := s["secret"].(map[string]any)
	name, _ := sec["name"].(string)
	key, _ := sec["key"].(string)
	if u == "" || name == "" || key == "" {
		return nil
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return &bbbAPI{endpoint: u, secret: contract.SecretRef{Name: name, Key: key}}
}

// bbbChecksum is the checksum of a BigBlueButton API call: the hex SHA-256 of the
// call's name, its query string without the checksum and the shared secret, in that
// order. bbb-web compares it in GetChecksumValidator.isValid
// (bigbluebutton/bigbluebutton
// bbb-common-web/src/main/java/org/bigbluebutton/api/model/validator/GetChecksumValidator.java:
// sha1Hex(apiCall + queryStringWithoutChecksum + securitySalt), sha256Hex for a
// checksum of 64 characters).
func bbbChecksum(call, query, secret string) string {
	sum := sha256.Sum256([]byte(call + query + secret))
	return hex.EncodeToString(sum[:])
}

// bbbResponse is the XML every BigBlueButton API call answers.
type bbbResponse struct {
	XMLName    xml.Name `xml:"response"`
	ReturnCode string   `xml:"returncode"`
	MessageKey string   `xml:"messageKey"`
	Message    string   `xml:"message"`
	Meetings   []struct {
		MeetingID string `xml:"meetingID"`
	} `xml:"meetings>meeting"`
}

// checkBBBAPI calls getMeetings with the checksum computed from the shared secret
// Greenlight reads: SUCCESS proves the server runs its API behind the route and that
// both sides hold the same secret. Only the URL without the checksum is reported.
func (r *runner) checkBBBAPI(ctx context.Context, a app, api *bbbAPI, tlsOK map[string]bool) {
	target := api.endpoint + "api/getMeetings"
	res := Result{Name: CheckApp, Target: target, Component: a.component, Status: Skip, Reason: ReasonNotApplicable}
	host := hostOf(target)
	if ok, workplaceHost := tlsOK[host]; workplaceHost && !ok {
		r.report(skipped(CheckApp, target, a.component, fmt.Sprintf("the TLS check of %s did not pass", host)))
		return
	}
	if r.opts.Secrets == nil {
		res.Message = "no cluster access to read the BigBlueButton shared secret"
		res.Fix = "pass --kubeconfig/--context and -n"
		r.report(res)
		return
	}
	r.report(r.timed(ctx, func(ctx context.Context) Result {
		res.Status, res.Reason = Fail, ""
		data, err := r.opts.Secrets.SecretData(ctx, r.plan.Namespace, api.secret.Name)
		if err != nil || len(data[api.secret.Key]) == 0 {
			res.Reason = ReasonSecretUnavailable
			res.Message = fmt.Sprintf("cannot read the BigBlueButton shared secret (Secret %s key %s)", api.secret.Name, api.secret.Key)
			if err != nil {
				res.Message += ": " + err.Error()
			}
			res.Fix = "run platzwart apply (it generates the shared secret), and check that you may get Secrets in " + r.plan.Namespace
			return res
		}
		resp, body, err := r.get(ctx, target+"?checksum="+bbbChecksum("getMeetings", "", string(data[api.secret.Key])))
		if err != nil {
			return connError(res, host, err)
		}
		v := judgeGetMeetings(resp, body)
		if v.ok() {
			res.Status, res.Message = Pass, v.message
			return res
		}
		res.Reason, res.Message, res.Fix = v.reason, v.message, v.fix
		return res
	}))
}

// judgeGetMeetings judges bbb-web's answer to getMeetings.
func judgeGetMeetings(resp *http.Response, body []byte) verdict {
	if v := status(resp, http.StatusOK, "the BigBlueButton API", "check the server pod of the bigbluebutton release (kubectl get pod -l app.kubernetes.io/component=server: Pending means no node carries the media label) and the route of /bigbluebutton"); !v.ok() {
		return v
	}
	var r bbbResponse
	if err := xml.Unmarshal(body, &r); err != nil || r.ReturnCode == "" {
		return unexpected("getMeetings did not answer BigBlueButton's XML: %s", trimBody(body))
	}
	switch {
	case r.ReturnCode == "SUCCESS":
		return passed("the BigBlueButton API accepts the shared secret (%d meetings running)", len(r.Meetings))
	case r.MessageKey == "checksumError":
		return verdict{reason: ReasonUnexpectedBody, message: "the BigBlueButton API rejects the checksum of the shared secret Greenlight uses",
			fix: "the server and Greenlight must read the same secret: check the values servers[0].secret of bigbluebutton against the server's securitySalt"}
	default:
		return unexpected("getMeetings answered %s: %s %s", r.ReturnCode, r.MessageKey, r.Message)
	}
}
