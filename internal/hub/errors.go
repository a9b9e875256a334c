package hub

import (
	"errors"
	"fmt"
	"strings"
)

// UnavailableError is returned when a binding cannot reach its server now:
// the connect failed, the circuit breaker is open, or the connection broke
// during the request. It unwraps to ErrUnavailable and the cause.
type UnavailableError struct {
	Server string
	Cause  error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%v: %s: %v", ErrUnavailable, e.Server, e.Cause)
}

func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Cause} }

// Message returns err as a sentence for people, in lang ("ko" for Korean,
// anything else English), naming the server it is about. Causes the hub does
// not know are passed on as they are.
func Message(err error, lang string) string {
	ko := strings.HasPrefix(strings.ToLower(lang), "ko")
	var ue *UnavailableError
	var ae *AuthorizationError
	var mv *MissingVariablesError
	switch {
	case errors.As(err, &ae):
		if ko {
			return fmt.Sprintf("%s 서버를 쓰려면 먼저 로그인해야 합니다. 이 링크를 여세요: %s", ae.Server, ae.URL)
		}
		return fmt.Sprintf("%s needs you to sign in first. Open this link: %s", ae.Server, ae.URL)
	case errors.As(err, &mv):
		if ko {
			return fmt.Sprintf("%s 서버에 필요한 값(%s)을 서버 설정에서 입력하세요.", mv.Server, strings.Join(mv.Names, ", "))
		}
		return mv.Error()
	case errors.As(err, &ue):
		if ko {
			return fmt.Sprintf("%s 서버에 지금 연결할 수 없습니다 (%v). 잠시 후 다시 시도하세요.", ue.Server, ue.Cause)
		}
		return fmt.Sprintf("The %s server is unavailable right now (%v). Try again shortly.", ue.Server, ue.Cause)
	}
	return err.Error()
}
