package har

// The HAR 1.2 objects tlstap writes, field order as in the specification.

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cookie struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type postData struct {
	MimeType string   `json:"mimeType"`
	Params   []header `json:"params"`
	Text     string   `json:"text"`
	Encoding string   `json:"_encoding,omitempty"`
}

type request struct {
	Method      string    `json:"method"`
	URL         string    `json:"url"`
	HTTPVersion string    `json:"httpVersion"`
	Cookies     []cookie  `json:"cookies"`
	Headers     []header  `json:"headers"`
	QueryString []header  `json:"queryString"`
	PostData    *postData `json:"postData,omitempty"`
	HeadersSize int       `json:"headersSize"`
	BodySize    int       `json:"bodySize"`
}

type content struct {
	Size     int    `json:"size"`
	MimeType string `json:"mimeType"`
	Text     string `json:"text,omitempty"`
	Encoding string `json:"encoding,omitempty"`
}

type response struct {
	Status      int      `json:"status"`
	StatusText  string   `json:"statusText"`
	HTTPVersion string   `json:"httpVersion"`
	Cookies     []cookie `json:"cookies"`
	Headers     []header `json:"headers"`
	Content     content  `json:"content"`
	RedirectURL string   `json:"redirectURL"`
	HeadersSize int      `json:"headersSize"`
	BodySize    int      `json:"bodySize"`
}

type timings struct {
	Blocked float64 `json:"blocked"`
	DNS     float64 `json:"dns"`
	Connect float64 `json:"connect"`
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
	SSL     float64 `json:"ssl"`
}

// wsMessage is one WebSocket message as Chrome writes it.
type wsMessage struct {
	Type   string  `json:"type"` // send or receive, seen from the client
	Time   float64 `json:"time"` // Unix seconds
	Opcode int     `json:"opcode"`
	Data   string  `json:"data"`
}

// meta is the documented "_tlstap" object.
type meta struct {
	PID              int64  `json:"pid"`
	TID              int64  `json:"tid"`
	UID              uint32 `json:"uid"`
	Comm             string `json:"comm"`
	FD               uint32 `json:"fd"`
	UUID             string `json:"uuid"`
	ConnID           uint64 `json:"connId"`
	StreamID         uint32 `json:"streamId,omitempty"`
	TLSVersion       string `json:"tlsVersion,omitempty"`
	Src              string `json:"src,omitempty"`
	Dst              string `json:"dst,omitempty"`
	RequestSeq       uint64 `json:"requestSeq,omitempty"`
	ResponseSeq      uint64 `json:"responseSeq,omitempty"`
	ContentEncoding  string `json:"contentEncoding,omitempty"`
	TransferEncoding string `json:"transferEncoding,omitempty"`
	Truncated        bool   `json:"truncated,omitempty"`
	Incomplete       bool   `json:"incomplete,omitempty"`
	RequestMissing   bool   `json:"requestMissing,omitempty"`
	// WebSocketDropped counts messages beyond MaxMessages, not written.
	WebSocketDropped int `json:"webSocketDropped,omitempty"`
}

type entry struct {
	StartedDateTime string      `json:"startedDateTime"`
	Time            float64     `json:"time"`
	Request         request     `json:"request"`
	Response        response    `json:"response"`
	Cache           struct{}    `json:"cache"`
	Timings         timings     `json:"timings"`
	ServerIPAddress string      `json:"serverIPAddress,omitempty"`
	Connection      string      `json:"connection,omitempty"`
	ResourceType    string      `json:"_resourceType,omitempty"`
	WebSocket       []wsMessage `json:"_webSocketMessages,omitempty"`
	TLSTap          meta        `json:"_tlstap"`
}
