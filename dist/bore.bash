# bash completion for bore(1)                                -*- shell-script -*-
# Installed as share/bash-completion/completions/bore (loaded on first use by
# the bash-completion package); works alone too: `source dist/bore.bash`.
#
# The tables: each command's options, in the order of `bore <command> --help`.
# A new option goes on its command's line; one that takes no value also goes
# in _bore_switches, one whose value is a file in _bore_file_opts, a directory
# in _bore_dir_opts. tests/e2e/test_packaging.py checks them against --help.

_bore_commands='local server kafka-proxy help'
_bore_opts_local='-l --local-host -t --to -p --port -s --secret --secret-file
    --heartbeat-timeout --reconnect-attempts --no-reconnect --reclaim-timeout --metrics -h --help'
_bore_opts_server='--min-port --max-port -s --secret --secret-file --bind-addr --control-port
    --bind-tunnels --max-handshakes --max-handshakes-per-source --max-tunnels --max-pending
    --max-pending-per-tunnel --max-relays --max-relays-per-tunnel --max-relay-memory --metrics --grace
    -h --help'
_bore_opts_kafka_proxy='-b --bootstrap-server -t --to -s --secret --secret-file --advertised-host
    -p --port --heartbeat-timeout --max-frame-size --map --strict --check --state-dir --auth-user
    --auth-file --add-user --allow-plain-without-tls --auth-deadline --metrics --no-tui --tls
    --tls-cert --tls-key --tls-client-ca --tls-handshake-timeout --print-ca --broker-tls --broker-ca
    --broker-cert --broker-key --reconnect-attempts --no-reconnect --reclaim-timeout -h --help'
_bore_switches='-h --help -V --version --strict --check --allow-plain-without-tls --no-tui --tls
    --print-ca --broker-tls --no-reconnect'
_bore_file_opts='--secret-file --auth-file --tls-cert --tls-key --tls-client-ca --broker-ca
    --broker-cert --broker-key'
_bore_dir_opts='--state-dir'

_bore()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev='' cmd='' opts i
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()

    # --opt=value reaches us split in three words: --opt, =, value.
    if [[ $cur == = ]]; then
        cur=''
    elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    fi

    # The command: the first word after `bore` that is not an option.
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} != -* ]]; then
            cmd=${COMP_WORDS[i]}
            break
        fi
    done

    case $cmd in
    '')
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W '-h --help -V --version' -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$_bore_commands" -- "$cur")
        fi
        return 0
        ;;
    help)
        ((i == COMP_CWORD - 1)) &&
            mapfile -t COMPREPLY < <(compgen -W 'local server kafka-proxy' -- "$cur")
        return 0
        ;;
    local) opts=$_bore_opts_local ;;
    server) opts=$_bore_opts_server ;;
    kafka-proxy) opts=$_bore_opts_kafka_proxy ;;
    *) return 0 ;;
    esac

    # The value of an option: files, directories, or nothing to offer.
    if [[ $prev == -* && " ${opts//$'\n'/ } " == *" $prev "* && " ${_bore_switches//$'\n'/ } " != *" $prev "* ]]; then
        if [[ " ${_bore_file_opts//$'\n'/ } " == *" $prev "* ]]; then
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        elif [[ " ${_bore_dir_opts//$'\n'/ } " == *" $prev "* ]]; then
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        fi
        return 0
    fi

    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
    fi
    return 0
} &&
    complete -F _bore bore
